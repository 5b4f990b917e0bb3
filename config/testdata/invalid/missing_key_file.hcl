# STARTTLS with a certificate but no key; Direct TLS with no certificate at
# all; and passthrough, where Guard does not terminate TLS, with a certificate.
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  tls {
    mode      = "starttls"
    cert_file = "tls.crt"
  }
}

listener "c2s-direct" {
  address = "0.0.0.0:5223"
  backend = "xmpp"
  tls {
    mode = "direct"
  }
}

listener "c2s-passthrough" {
  address = "0.0.0.0:5224"
  backend = "xmpp"
  tls {
    mode      = "passthrough"
    cert_file = "tls.crt"
    key_file  = "tls.key"
  }
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}
