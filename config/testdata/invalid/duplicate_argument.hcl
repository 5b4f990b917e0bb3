# An argument set twice in one block: hcl names the first, at FILE:LINE:COL.
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  address = "0.0.0.0:5223"
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}
