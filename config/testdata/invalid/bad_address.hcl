admin {
  address = "localhost"
}

listener "c2s" {
  address = "0.0.0.0:xmpp-client"
  backend = "xmpp"
}

listener "s2s" {
  address = "[::]:70000"
  backend = "xmpp"
}

backend "xmpp" {
  address = ":5262"
}
