# Rates are a number, a slash and s, m or h; byte rates a size and "/s".
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  limits {
    connection_rate_per_ip  = "5/min"
    client_bytes_per_second = "64KiB"
  }
}

listener "c2s-tls" {
  address = "0.0.0.0:5223"
  backend = "xmpp"
  limits {
    connection_rate_per_ip  = 5
    client_bytes_per_second = "64kib/s"
  }
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}
