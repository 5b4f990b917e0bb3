listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "openfire"
}

listener "s2s" {
  address = "0.0.0.0:5269"
  backend = "prosody"
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}

backend "prosody" {
  address = "127.0.0.1:5269"
}
