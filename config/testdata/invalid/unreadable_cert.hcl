# Certificate files that do not exist. Relative paths are read from Guard's
# working directory (here, the config package, where the tests run).
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  tls {
    mode      = "direct"
    cert_file = "testdata/invalid/no-such-file.crt"
    key_file  = "testdata/invalid/no-such-file.key"
  }
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}
