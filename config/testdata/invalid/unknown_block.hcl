# A block type that does not exist, and one that is misspelt.
listner "c2s" {
  address = "0.0.0.0:5222"
}

listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  metrics {
    path = "/metrics"
  }
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}
