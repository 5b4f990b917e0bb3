# see-other-host needs to know where to send clients.
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}

policy {
  overload = "see-other-host"
  shutdown = "see-other-host"

  event "queue-timeout" {
    condition = "resource-constraint"
    text      = "try again in a minute"
  }
}
