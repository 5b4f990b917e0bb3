# Direct TLS (XEP-0368) and STARTTLS with a certificate from Let's Encrypt.
#
#   client --443 (Direct TLS, ALPN xmpp-client)--> Guard --+--> Openfire 127.0.0.1:5262
#   client --5222 (STARTTLS)---------------------> Guard --+
#
# DNS: xmpp.example.net points at this machine, and the SRV records
#   _xmpps-client._tcp.example.net. SRV 0 5 443  xmpp.example.net.
#   _xmpp-client._tcp.example.net.  SRV 5 5 5222 xmpp.example.net.
# The CA validates on port 443 (tls-alpn-01), which the Direct TLS listener
# answers. Port 443 needs CAP_NET_BIND_SERVICE (deploy/systemd/guard.service
# grants it). Setting the acme block means agreeing to the CA's terms.

admin {
  address = "127.0.0.1:9090"
}

listener "xmpps" {
  address = "0.0.0.0:443"
  backend = "openfire"
  tls {
    mode = "direct" # TLS from the first byte; no cert_file: the acme block's certificate
    alpn = ["xmpp-client"]
  }
}

listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "openfire"
  tls {
    mode = "starttls" # the same ACME certificate
  }
}

backend "openfire" {
  address = "127.0.0.1:5262"
}

acme {
  ca         = "https://acme-v02.api.letsencrypt.org/directory"
  email      = "ops@example.net"
  domains    = ["example.net", "xmpp.example.net"] # the XMPP domain and the host clients dial
  storage    = "/var/lib/guard/certmagic"          # keep it: the account, certificates and keys
  challenges = ["tls-alpn-01"]
}
