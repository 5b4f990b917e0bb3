# The admin token file does not exist: a relative path is read from the
# working directory, not from the directory of this file.
admin {
  address    = "127.0.0.1:9090"
  token_file = "secrets/guard-admin-token"
}

listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}
