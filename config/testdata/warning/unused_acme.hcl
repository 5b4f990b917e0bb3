# Valid, with warnings: the only listener passes TLS through to the backend,
# so no listener takes its certificate from the acme block; and alpn is set
# where Guard offers no ALPN (only Direct TLS listeners do).
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  tls {
    mode = "passthrough"
    alpn = ["xmpp-client"]
  }
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}

acme {
  ca      = "https://acme-v02.api.letsencrypt.org/directory"
  email   = "ops@example.net"
  domains = ["xmpp.example.net"]
}
