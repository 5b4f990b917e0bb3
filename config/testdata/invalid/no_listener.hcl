# Only a backend: Guard has nothing to listen on.
backend "xmpp" {
  address = "127.0.0.1:5262"
}
