# Several mistakes at once: all are reported in one run.
log {
  level  = "loud"
  format = "text"
}

shutdown {
  drain_timeout = "soon"
}

listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmp"
  timeouts {
    handshake = "-10s"
    idel      = "5m"
  }
}

listener "c2s" {
  address = "0.0.0.0"
  backend = "xmpp"
}

backend "xmpp" {
  address         = "127.0.0.1:5262"
  connect_timeout = "0s"
}
