# Federation: clients on 5222 and remote servers on 5269, both in front of
# one Openfire whose own ports moved to loopback. Guard frames each remote
# server's stream until STARTTLS, limits each remote domain, then passes
# the TLS between the remote server and Openfire unchanged (dialback and
# SASL EXTERNAL stay Openfire's). Direct TLS (XEP-0368) on 5270 is passed
# through too, routed by the ClientHello's server name.
#
#   c2s         0.0.0.0:5222 --> Openfire 127.0.0.1:5262
#   s2s         0.0.0.0:5269 --> Openfire 127.0.0.1:5259 (xmpp.server.socket.port)
#   s2s-direct  0.0.0.0:5270 --> Openfire 127.0.0.1:5258 (its Direct TLS s2s port)

admin {
  address = "127.0.0.1:9090"
}

listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "openfire"
}

listener "s2s" {
  address = "0.0.0.0:5269"
  stream  = "server"
  limits {
    max_streams_per_domain = 20    # a remote server needs one or two per domain pair
    stream_rate_per_domain = "2/s" # a reconnect loop is cut, a restart is not
  }
  timeouts {
    idle = "1h" # servers ping their streams well within this
  }
  route "example.net" {
    backend = "openfire-s2s"
  }
}

listener "s2s-direct" {
  address = "0.0.0.0:5270"
  stream  = "server"
  tls {
    mode = "passthrough"
  }
  route "example.net" {
    backend = "openfire-s2s-direct"
  }
}

backend "openfire" {
  address = "127.0.0.1:5262"
}

backend "openfire-s2s" {
  address = "127.0.0.1:5259"
}

backend "openfire-s2s-direct" {
  address = "127.0.0.1:5258"
}
