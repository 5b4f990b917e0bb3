# TLS to the backend with a CA file that does not exist. Relative paths are
# read from Guard's working directory (here, the config package, where the
# tests run).
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
}

backend "xmpp" {
  address = "openfire.internal:5223"
  tls {
    server_name = "openfire.internal"
    ca_file     = "testdata/invalid/no-such-ca.pem"
  }
}
