# Keepalive probes may be off ("0s"), but a dead client must be declared
# dead at some point, and the backend must answer at some point.
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  timeouts {
    probe         = "0s"
    probe_timeout = "0s"
  }
}

backend "xmpp" {
  address       = "127.0.0.1:5262"
  reply_timeout = "5"
}
