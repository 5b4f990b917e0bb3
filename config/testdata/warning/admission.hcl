# Admission settings that are valid but cannot act as written.
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "openfire"
  limits {
    connection_burst_per_ip = 10 # no connection_rate_per_ip
  }
}

backend "openfire" {
  address           = "127.0.0.1:5262"
  queue_timeout     = "2m"
  new_streams_burst = 50 # no new_streams_per_second
}

listener "c2s-uncapped" {
  address = "0.0.0.0:5223"
  backend = "uncapped"
}

backend "uncapped" {
  address     = "127.0.0.1:5263"
  max_streams = 0
  queue_size  = 100
  adaptive { enabled = false } # a fixed cap, and there is none
}
