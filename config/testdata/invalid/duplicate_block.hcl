log {
  level = "debug"
}

log {
  format = "json"
}

listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  timeouts {
    handshake = "5s"
  }
  timeouts {
    idle = "1h"
  }
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}
