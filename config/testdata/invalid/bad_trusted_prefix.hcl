# A trusted prefix with host bits set: Guard cannot tell whether the network
# or the one address is meant, and says both.
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  proxy_protocol {
    trusted = ["192.0.2.7", "10.1.2.3/8"]
  }
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}
