# A misspelt argument name: hcl suggests the right one.
listener "c2s" {
  backend = "xmpp"
  adress  = "0.0.0.0:5222"
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}
