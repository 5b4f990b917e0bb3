# Guard's configuration. Every key is optional unless marked "required";
# the values written here are the defaults. docs/config.md describes each one.
# Check a change with: guard validate -config config.hcl

log {
  level  = "info" # trace | debug | info | warn | error
  format = "text" # text | json (use json where logs are collected, e.g. Kubernetes)
  # A line per stream end (reason, duration, bytes each way, node):
  # all | errors (not the clean closes) | off
  connections = "all"
}

# HTTP endpoint: GET /healthz, /readyz, /metrics and /backends (never
# authenticated: keep it on loopback or a private network; "" turns it off),
# and POST /-/drain and POST /-/reload (POST only; other methods get 405).
admin {
  address = "127.0.0.1:9090"
  # A bearer token for POST /-/drain and POST /-/reload: the file's one line
  # (e.g. from openssl rand -hex 32), read at start and on reload. No token
  # by default.
  # token_file = "/run/secrets/guard-admin-token"
}

shutdown {
  # On SIGTERM (or POST /-/drain on the admin port; POST only) /readyz turns
  # 503 at once; Guard keeps accepting for accept_delay, then stops and ends
  # the open streams with <system-shutdown/> spread evenly over drain_timeout;
  # at deadline (from the signal) it closes what is left and exits.
  accept_delay  = "0s"  # use a few seconds behind a load balancer
  drain_timeout = "25s" # "0s" ends every stream at once
  deadline      = "30s" # > accept_delay + drain_timeout; < terminationGracePeriodSeconds
}

# Client-to-server XMPP. Add more listener blocks for more ports; each name
# must be unique.
listener "c2s" {
  address = "0.0.0.0:5222" # required: host:port to listen on
  backend = "xmpp"         # the name of a backend block; required unless there are routes

  # Routing by domain: streams whose "to" is this domain (any case) go to
  # another backend. With routes, backend above is optional: without it,
  # other domains get host-unknown.
  # route "chat.example.net" {
  #   backend = "chat" # required
  # }

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

    # Per client address (an IPv4 address, or an IPv6 /64). Off by default:
    # behind NAT or carrier-grade NAT many clients share one address.
    max_connections_per_ip  = 0      # open at once; 0 = no cap (e.g. 20)
    connection_rate_per_ip  = "0/s"  # new connections: "N/s", "N/m" or "N/h"; "0/s" = no limit (e.g. "5/s")
    connection_burst_per_ip = 0      # back to back before the rate applies; 0 = one second's worth, at least 1
    tracked_addresses       = 100000 # addresses remembered (about 250 bytes each); 1000..10000000
    client_bytes_per_second = "0B/s" # read rate per client, delayed not dropped; "0B/s" = no limit (e.g. "64KiB/s")
  }

  # TLS with clients. Off here (mode "none": plaintext, for loopback or a
  # trusted network). "starttls": Guard answers the first stream, requires
  # STARTTLS, and the backend sees only the stream after TLS; "direct": TLS
  # from the first byte (XEP-0368); "passthrough": the backend does TLS.
  # tls {
  #   mode        = "starttls"      # none | starttls | direct | passthrough
  #   cert_file   = "tls.crt"       # PEM chain, leaf first; picked up again when it changes
  #   key_file    = "tls.key"       # its key. Without both files: the acme block below
  #   alpn        = ["xmpp-client"] # direct only (its default there)
  #   min_version = "1.2"           # "1.2" | "1.3"
  # }

  # Behind a layer-4 load balancer that sends the PROXY protocol (v1 or v2):
  # connections from these addresses must begin with its header, whose
  # source then counts as the client's (limits, logs, the backend). List only
  # the balancers: whoever connects from them chooses the address Guard sees.
  # Off here (no block, or trusted = []).
  # proxy_protocol {
  #   trusted = ["10.0.0.0/8", "192.0.2.7"] # addresses or CIDR prefixes
  # }
}

# The XMPP server Guard forwards to (Openfire, Prosody, ejabberd).
backend "xmpp" {
  address         = "127.0.0.1:5262" # host:port to connect to; required unless node blocks
  # A pool instead of address (one or the other): each stream goes to the
  # usable node with the fewest streams; a failed dial tries the next; a
  # node failing 3 times in a row is left out for 10s.
  # node "10.0.0.1:5262" { max_streams = 5000 } # its own cap; 0 = none (the default)
  # node "10.0.0.2:5262" {}
  connect_timeout = "2s"
  reply_timeout   = "5s" # its stream header must arrive within this after the client's

  # Admission: Guard opens at most max_streams streams to this backend and
  # queues the clients beyond them, instead of letting it overload and reset
  # connections. Counts and rates are numbers, without quotes.
  max_streams            = 10000 # 0 = no cap; size it to what one backend node holds
  queue_size             = 1000  # clients waiting for a slot; 0 = refuse at once when full
  queue_timeout          = "10s" # longest wait in the queue, then resource-constraint
  new_streams_per_second = 0     # pace of new streams after a backend restart; 0 = no limit (e.g. 200)
  new_streams_burst      = 0     # back to back before the pace applies; 0 = one second's worth, at least 1

  # 1 or 2: send a PROXY protocol header of that version with the client's
  # address before anything else, for Prosody's mod_net_proxy or ejabberd's
  # use_proxy_protocol: true. 0 = none; Openfire does not support it.
  proxy_protocol = 0

  # Active health checks (none without the block): every interval, a test
  # stream to each node; a node that fails is left out until one passes.
  # health_check {
  #   interval = "5s"        # required
  #   timeout  = "2s"        # < interval
  #   domain   = "localhost" # the XMPP domain asked for; one the backend serves
  # }

  # TLS to the backend, for one reached over a network that is not trusted.
  # Off here (plaintext, for loopback). With the block, even empty, Guard
  # speaks Direct TLS from the first byte: point address at the backend's
  # Direct TLS port (e.g. 5223). The backend then offers SASL -PLUS bound to
  # Guard's TLS, which cannot match the client's: turn -PLUS off on it
  # (docs/tls.md; guard validate -probe reports it).
  # tls {
  #   server_name          = "openfire.internal"         # SNI and the name verified; default: the host of address (an IP is kept)
  #   ca_file              = "/etc/guard/backend-ca.pem" # PEM roots to verify it with; "" = the system roots
  #   insecure_skip_verify = false                       # true = no verification: tests only (a warning)
  #   min_version          = "1.2"                       # "1.2" | "1.3"
  # }
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

# Certificates by ACME (e.g. Let's Encrypt) for the listeners in mode
# starttls or direct without cert_file. Optional; ca, email and domains are
# required in it.
# acme {
#   ca           = "https://acme-v02.api.letsencrypt.org/directory"
#   email        = "ops@example.net"
#   domains      = ["xmpp.example.net"]
#   storage      = "./certmagic"     # account, certificates and keys; keep it
#   challenges   = ["tls-alpn-01"]   # and/or "http-01" (then set http_address = ":80")
# }
