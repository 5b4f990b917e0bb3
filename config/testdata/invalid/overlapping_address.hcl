# Addresses written differently that are one socket once bound: Guard
# listens on IPv4 and IPv6 at once, so "", "0.0.0.0" and "::" are the same
# and take every address of their port.
admin {
  address = "[::]:9090"
}

listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
}

listener "c2s-all" {
  address = ":5222"
  backend = "xmpp"
}

listener "c2s-v6" {
  address = "[::]:5223"
  backend = "xmpp"
}

listener "c2s-v4" {
  address = "0.0.0.0:5223"
  backend = "xmpp"
}

listener "c2s-loopback" {
  address = "127.0.0.1:5222"
  backend = "xmpp"
}

listener "c2s-mapped" {
  address = "[::ffff:10.0.0.5]:5269"
  backend = "xmpp"
}

listener "s2s" {
  address = "10.0.0.5:5269"
  backend = "xmpp"
}

listener "status" {
  address = "127.0.0.1:9090"
  backend = "xmpp"
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}
