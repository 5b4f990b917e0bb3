package tlsconf

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Serving a certificate from files on a Direct TLS listener (XEP-0368). Replacing the files
// later changes the certificate served, with no restart.
func Example_files() {
	dir, err := os.MkdirTemp("", "tlsconf-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writeSelfSigned(certFile, keyFile, "xmpp.example") // as a Kubernetes secret would

	m, err := New(context.Background(), Options{
		CertFile:   certFile,
		KeyFile:    keyFile,
		Storage:    filepath.Join(dir, "certmagic"),
		NextProtos: []string{"xmpp-client"},
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	ln, err := tls.Listen("tcp", "127.0.0.1:0", m.TLSConfig())
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if tc.Handshake() != nil || IsACMEChallenge(tc.ConnectionState()) {
			return // a tls-alpn-01 validation carries no stream
		}
		tc.Write([]byte("<?xml version='1.0'?>"))
	}()

	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{
		ServerName:         "xmpp.example",
		NextProtos:         []string{"xmpp-client"},
		InsecureSkipVerify: true, // self-signed for the example
	})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	cs := conn.ConnectionState()
	fmt.Println(cs.PeerCertificates[0].DNSNames, cs.NegotiatedProtocol, tls.VersionName(cs.Version))
	// Output: [xmpp.example] xmpp-client TLS 1.3
}
