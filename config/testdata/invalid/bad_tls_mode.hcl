# A TLS mode that does not exist, and a TLS version that Guard does not offer.
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  tls {
    mode        = "tls"
    min_version = "1.1"
  }
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}
