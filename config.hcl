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
    handshake     = "10s" # the client's stream header must arrive within this
    idle          = "0s"  # close a stream silent in both directions this long; "0s" = off
    probe         = "60s" # quiet this long: send a whitespace keepalive; "0s" = no probes
    probe_timeout = "30s" # unacknowledged data this long: the client is dead (TCP_USER_TIMEOUT)
    half_close    = "5s"  # after one side closes, the other side's time to finish
  }

  limits {
    max_stanza_size = "256KiB" # largest stanza, either way; 1KiB..16MiB (KB = 1000, KiB = 1024)
    max_header_size = "4KiB"   # largest client stream header; 512B..64KiB
  }
}

# The XMPP server Guard forwards to (Openfire, Prosody, ejabberd).
backend "xmpp" {
  address         = "127.0.0.1:5262" # required: host:port to connect to
  connect_timeout = "2s"
  reply_timeout   = "5s" # its stream header must arrive within this after the client's
}

# Which stream error clients get when Guard ends their stream. To redirect
# clients to another node when this one is full or draining, set
# see_other_host = "xmpp2.example.net:5222" and overload and/or shutdown to
# "see-other-host".
policy {
  see_other_host  = ""                      # DOMAIN[:PORT] of another node of the same XMPP domain
  overload        = "resource-constraint"   # or "see-other-host": queue full or queue timeout
  shutdown        = "system-shutdown"       # or "see-other-host"
  backend_failure = "internal-server-error" # or "remote-connection-failed", "undefined-condition"

  # One event at a time; the names and defaults are in docs/config.md.
  # event "backend-refused" {
  #   condition = "remote-connection-failed"
  #   text      = "node down" # "" sends no text
  # }
}
