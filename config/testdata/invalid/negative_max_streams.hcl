# Admission counts are whole numbers, without quotes, and never negative.
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "openfire"
  limits {
    max_connections_per_ip = "20"
    tracked_addresses      = 500
  }
}

backend "openfire" {
  address                = "127.0.0.1:5262"
  max_streams            = -1
  queue_size             = 2.5
  queue_timeout          = "0s"
  new_streams_per_second = -10
}
