# Sizes need a unit, in the right case, within their bounds.
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  limits {
    max_stanza_size = 262144
    max_header_size = "4kib"
  }
}

listener "c2s-tls" {
  address = "0.0.0.0:5223"
  backend = "xmpp"
  limits {
    max_stanza_size = "32MiB"
    max_header_size = "256B"
  }
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}
