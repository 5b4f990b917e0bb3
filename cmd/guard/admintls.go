package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// adminTransport is the HTTP transport of the commands that ask Guard's
// admin endpoint: no proxy from the environment, no kept connections, and,
// when certFile is set (the admin block's tls cert_file, or -cert), HTTPS
// that trusts exactly the first certificate of that file. The command and
// Guard read the same file, so no CA is needed, whatever name or address
// the certificate carries; a renewed file is trusted as soon as Guard
// serves it.
func adminTransport(certFile string) (*http.Transport, error) {
	t := &http.Transport{DisableKeepAlives: true}
	if certFile == "" {
		return t, nil
	}
	b, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	for block != nil && block.Type != "CERTIFICATE" {
		block, b = pem.Decode(b)
	}
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM certificate", certFile)
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return nil, fmt.Errorf("%s: %v", certFile, err)
	}
	want := block.Bytes
	t.TLSClientConfig = &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want) {
				return errors.New("the admin endpoint's certificate is not the one in " + certFile)
			}
			return nil
		},
	}
	return t, nil
}
