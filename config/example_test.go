package config_test

import (
	"fmt"
	"os"

	"github.com/guard-xmpp/guard/config"
)

func ExampleParse() {
	src := []byte(`
listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  timeouts {
    idle = "30m"
  }
}

backend "xmpp" {
  address = "127.0.0.1:5262"
}
`)
	c, err := config.Parse("guard.hcl", src)
	if err != nil {
		config.WriteDiagnostics(os.Stderr, err, 78, false)
		return
	}
	for _, l := range c.Listeners {
		b, _ := c.Backend(l.Backend)
		fmt.Printf("%s: %s -> %s (handshake %v, idle %v, half-close %v)\n",
			l.Name, l.Address, b.Address, l.Timeouts.Handshake, l.Timeouts.Idle, l.Timeouts.HalfClose)
	}
	fmt.Println("log:", c.Log.Level, c.Log.Format, "admin:", c.Admin.Address, "drain:", c.Shutdown.DrainTimeout)
	// Output:
	// c2s: 0.0.0.0:5222 -> 127.0.0.1:5262 (handshake 10s, idle 30m0s, half-close 5s)
	// log: info text admin: 127.0.0.1:9090 drain: 25s
}

func ExampleWriteDiagnostics() {
	src := []byte(`listener "c2s" {
  address = "0.0.0.0:5222"
  backend = "xmpp"
  timeouts {
    handshake = "10 s"
  }
}

backend "xmpp" {
  adress = "127.0.0.1:5262"
}
`)
	_, err := config.Parse("guard.hcl", src)
	config.WriteDiagnostics(os.Stdout, err, 78, false)
	// Output:
	// guard.hcl:5:17: error: Invalid duration
	//   in listener "c2s":
	//    5:     handshake = "10 s"
	//
	// "10 s" is not a duration. Use a number with a unit: "500ms", "10s", "2m".
	//
	// guard.hcl:9:1: error: Missing required argument
	//   in backend "xmpp":
	//    9: backend "xmpp" {
	//
	// backend "xmpp" has no address. Add one, e.g. address = "127.0.0.1:5262", or
	// for a pool of servers one node block each, e.g. node "10.0.0.1:5262" {}.
	//
	// guard.hcl:10:3: error: Unsupported argument
	//   in backend "xmpp":
	//   10:   adress = "127.0.0.1:5262"
	//
	// An argument named "adress" is not expected here. Did you mean "address"? A
	// backend block takes the arguments "address", "connect_timeout",
	// "reply_timeout", "max_streams", "queue_size", "queue_timeout",
	// "new_streams_per_second", "new_streams_burst", "proxy_protocol", "retries" and
	// the blocks "tls", "node", "health_check", "adaptive".
}

func ExampleDefault() {
	c := config.Default("127.0.0.1:5222", "127.0.0.1:5262")
	b := c.Backends[0]
	adaptive := *b.Adaptive
	b.Adaptive = nil
	fmt.Printf("%+v\n%+v\n%+v\n", c.Listeners[0], b, adaptive)
	// Output:
	// {Name:default Address:127.0.0.1:5222 Backend:default Routes:[] Timeouts:{Handshake:10s Idle:0s Probe:1m0s ProbeTimeout:30s HalfClose:5s} Limits:{XMLLimits:{MaxStanzaSize:262144 MaxHeaderSize:4096 MaxDepth:0 Advertise:true} AddrLimits:{MaxConnsPerIP:0 ConnRatePerIP:0 ConnBurstPerIP:0 TrackedAddresses:100000 ClientBytesPerSecond:0 Deny:[] MaxStreamsPerDomain:0 StreamRatePerDomain:0 StreamBurstPerDomain:0}} TLS:{Mode:none CertFile: KeyFile: ALPN:[] MinVersion:1.2} ProxyProtocol:{Trusted:[]} WebSocket:<nil> Stream:client}
	// {Backend:{Name:default Address:127.0.0.1:5262 ConnectTimeout:2s ReplyTimeout:5s ProxyProtocol:0 TLS:<nil> Nodes:[] Health:{Interval:0s Timeout:0s Domain:} Admission:{MaxStreams:10000 QueueSize:1000 QueueTimeout:10s NewStreamsPerSecond:0 NewStreamsBurst:0} Retries:2 Adaptive:<nil>} TLS:<nil>}
	// {Min:4 Max:0 Initial:16 Tolerance:2 Backoff:0 Reprobe:5s Window:0s Cooldown:0s Slack:0s}
}
