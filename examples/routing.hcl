# Two XMPP domains on one port, each on its own server: example.net on
# Openfire, chat.example.org on Prosody. Guard reads the stream header's
# "to" and routes by it; any other domain gets <host-unknown/>.
#
#   to=example.net      --> Openfire 127.0.0.1:5262
#   to=chat.example.org --> Prosody  127.0.0.1:5272 (with the client's address)

admin {
  address = "127.0.0.1:9090"
}

listener "c2s" {
  address = "0.0.0.0:5222"
  # No backend here: a domain without a route is refused with host-unknown.

  route "example.net" {
    backend = "openfire"
  }
  route "chat.example.org" {
    backend = "prosody"
  }

  # The certificate must name both domains (two DNS names in one
  # certificate); Guard serves one certificate per listener.
  tls {
    mode      = "starttls"
    cert_file = "/etc/guard/tls/tls.crt"
    key_file  = "/etc/guard/tls/tls.key"
  }
}

backend "openfire" {
  address = "127.0.0.1:5262"
}

backend "prosody" {
  address        = "127.0.0.1:5272"
  proxy_protocol = 2 # Prosody's mod_net_proxy on this port: it sees the client's address
}
