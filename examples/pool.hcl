# One XMPP domain served by a pool of three Openfire nodes (an Openfire
# cluster), with active health checks.
#
#   client --5222--> Guard --+--> 10.0.0.11:5262
#                            +--> 10.0.0.12:5262
#                            +--> 10.0.0.13:5262
#
# Each stream goes to the usable node with the fewest streams. A connection
# that fails before the node's stream header is retried on another usable
# node; a node that keeps failing is left out while another one is usable
# (docs/config.md, backend pools). Keep 5262 reachable from Guard only.

admin {
  address = "127.0.0.1:9090" # GET /backends lists the nodes and their state
}

listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "openfire"
  tls {
    mode      = "starttls"
    cert_file = "/etc/guard/tls/tls.crt"
    key_file  = "/etc/guard/tls/tls.key"
  }
}

backend "openfire" {
  node "10.0.0.11:5262" { max_streams = 8000 } # the bigger machine
  node "10.0.0.12:5262" { max_streams = 5000 }
  node "10.0.0.13:5262" { max_streams = 5000 }

  # Every 5 s a test stream to each node, as a client would open it; a node
  # that does not answer with its header and features in 2 s gets no new
  # streams until a check passes.
  health_check {
    interval = "5s"
    timeout  = "2s"
    domain   = "example.net" # the XMPP domain the nodes serve
  }

  # A connection that fails before the node's stream header (refused,
  # reset, closed) is tried again on another usable node, up to 2 times,
  # the client holding its slot; then it gets internal-server-error.
  retries                = 2

  max_streams            = 15000 # the whole pool
  queue_size             = 2000
  queue_timeout          = "10s"
  new_streams_per_second = 300 # reconnect storm after a node restarts
}
