# Openfire behind Guard on one machine, STARTTLS with certificate files.
#
#   client --5222 (STARTTLS)--> Guard --127.0.0.1:5262 (plaintext)--> Openfire
#
# Openfire's plain client port moved to 127.0.0.1:5262, its Direct TLS port
# and STARTTLS off (docs/openfire.md, "The walkthrough"). Check this file with
#   guard validate -config /etc/guard/config.hcl

log {
  level  = "info"
  format = "text" # "json" where a collector reads the logs
}

admin {
  address = "127.0.0.1:9090" # health, readiness, metrics, drain, reload: loopback only
}

shutdown {
  accept_delay  = "0s"  # nothing in front of Guard needs time to notice a drain
  drain_timeout = "25s" # <system-shutdown/> spread over 25 s: reconnects come in a trickle
  deadline      = "30s" # below systemd's TimeoutStopSec (deploy/systemd/guard.service)
}

listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "openfire"

  # Guard answers the first stream itself with a required <starttls/>; the
  # backend sees only the stream after TLS. The files are PEM (the chain,
  # leaf first, and its key) for the XMPP domain, e.g. example.net, and are
  # picked up again when they change: a renewal needs no reload.
  tls {
    mode      = "starttls"
    cert_file = "/etc/guard/tls/tls.crt"
    key_file  = "/etc/guard/tls/tls.key"
  }

  limits {
    max_connections_per_ip = 20    # Openfire sees every client as 127.0.0.1:
    connection_rate_per_ip = "5/s" # these are the only per-address limits
  }
}

backend "openfire" {
  address     = "127.0.0.1:5262" # Openfire's plain client port (xmpp.socket.plain.port)
  max_streams = 10000            # what this Openfire holds: measure yours
}
