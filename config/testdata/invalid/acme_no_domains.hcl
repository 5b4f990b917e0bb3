# An acme block without domains, with a CA reached over plain HTTP, and
# with a challenge Guard does not answer.
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  tls {
    mode = "starttls"
  }
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}

acme {
  ca         = "http://acme.example.net/directory"
  email      = "ops@example.net"
  challenges = ["tls-alpn-01", "dns-01"]
}
