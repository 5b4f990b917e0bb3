# A backend with both address and node blocks: keep one of the two.
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
}

backend "xmpp" {
  address = "127.0.0.1:5262"
  node "127.0.0.1:5263" {}
  node "127.0.0.1:5264" { max_streams = 5000 }
}
