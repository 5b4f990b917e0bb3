shutdown {
  accept_delay  = "5s"
  drain_timeout = "30s"
  deadline      = "30s"
}

listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}
