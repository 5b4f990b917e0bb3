# Mistakes in the policy block: each is reported where it is written.
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}

policy {
  see_other_host  = "xmpp2.example.net:xmpp-client"
  overload        = "see-other-host"
  backend_failure = "remote-connection-failure"

  event "backend-refsed" {
    text = "node down"
  }

  event "backend-stalled" {
    condition = "connection-timeout"
  }

  event "stanza-too-large" {
    condition = "too-big"
  }

  event "not-well-formed" {
    condition = "see-other-host"
  }
}
