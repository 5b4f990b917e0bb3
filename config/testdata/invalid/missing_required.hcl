listener "c2s" {
}

listener {
  address = "0.0.0.0:5223"
  backend = "xmpp"
}

listener "c2s tls" {
  address = "0.0.0.0:5223"
  backend = "xmpp"
}

backend "xmpp" {
}
