# Valid, with a warning: see_other_host is set, but nothing redirects.
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}

policy {
  see_other_host = "xmpp2.example.net:5222"
  overload       = "resource-constraint"
}
