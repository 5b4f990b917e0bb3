shutdown {
  drain_timeout = "-5s"
}

listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  timeouts {
    idle       = "-1m"
    half_close = "0s"
  }
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}
