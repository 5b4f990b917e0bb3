# Guard's configuration. Every key is optional unless marked "required";
# the values written here are the defaults. docs/config.md describes each one.
# Check a change with: guard validate -config config.hcl

log {
  level  = "info" # trace | debug | info | warn | error
  format = "text" # text | json (use json where logs are collected, e.g. Kubernetes)
}

# HTTP endpoint for /healthz, /readyz and /metrics. Keep it on loopback or a
# private network; "" turns it off.
admin {
  address = "127.0.0.1:9090"
}

shutdown {
  # On SIGTERM Guard stops accepting and lets open streams finish for this
  # long, then closes them. "0s" closes them at once.
  drain_timeout = "25s"
}

# Client-to-server XMPP. Add more listener blocks for more ports; each name
# must be unique.
listener "c2s" {
  address = "0.0.0.0:5222" # required: host:port to listen on
  backend = "xmpp"         # required: the name of a backend block

  timeouts {
    handshake  = "10s" # the client's stream header must arrive within this
    idle       = "0s"  # close a stream silent in both directions this long; "0s" = off
    half_close = "5s"  # after one side closes, the other side's time to finish
  }
}

# The XMPP server Guard forwards to (Openfire, Prosody, ejabberd).
backend "xmpp" {
  address         = "127.0.0.1:5262" # required: host:port to connect to
  connect_timeout = "2s"
}
