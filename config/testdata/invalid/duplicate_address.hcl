admin {
  address = "0.0.0.0:5269"
}

listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
}

listener "c2s-legacy" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
}

listener "s2s" {
  address = "0.0.0.0:5269"
  backend = "xmpp"
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}
