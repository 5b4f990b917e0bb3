# A route to a backend that does not exist: a near miss gets a suggestion.
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  route "chat.example.net" {
    backend = "chatt"
  }
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}

backend "chat" {
  node "10.0.0.1:5262" {}
  node "10.0.0.2:5262" {}
}
