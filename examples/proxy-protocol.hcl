# Guard behind a layer-4 load balancer that sends the PROXY protocol: HAProxy
# (haproxy.cfg in this directory), or a cloud load balancer with PROXY
# protocol v2 turned on (an AWS Network Load Balancer's target group
# attribute proxy_protocol_v2.enabled, for example).
#
#   client --5222--> load balancer (10.0.1.0/24) --PROXY v2 + XMPP--> Guard --> Openfire
#
# Guard reads the header only from the balancers listed in trusted, and
# charges the per-address limits to the client address in it.

admin {
  address = "127.0.0.1:9090"
}

shutdown {
  accept_delay  = "10s" # the balancer's health check needs a few intervals to see the drain
  drain_timeout = "45s"
  deadline      = "60s"
}

listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "openfire"

  # Only the balancers: whoever connects from a trusted address chooses the
  # client address Guard sees. Connections from elsewhere are not read for
  # a header. A balancer's health check (a LOCAL header) is accepted.
  proxy_protocol {
    trusted = ["10.0.1.0/24"]
  }

  tls {
    mode      = "starttls" # the balancer passes TCP through; Guard holds the TLS
    cert_file = "/etc/guard/tls/tls.crt"
    key_file  = "/etc/guard/tls/tls.key"
  }

  limits {
    max_connections_per_ip  = 20
    connection_rate_per_ip  = "5/s"
    connection_burst_per_ip = 20
  }
}

backend "openfire" {
  address = "127.0.0.1:5262" # Openfire takes no PROXY header: proxy_protocol stays 0
}
