listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"

backend "xmpp" {
  address = "127.0.0.1:5262"
}
