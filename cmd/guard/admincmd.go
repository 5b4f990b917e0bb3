package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/guard-xmpp/guard/config"
)

// cmdAdminPost is `guard drain` and `guard reload`: one POST to endpoint
// (/-/drain, /-/reload) on Guard's admin port, with the admin token, and
// the server's answer printed: stdout and exit 0 on 2xx, stderr and exit 1
// on any other answer or none, exit 2 on bad usage.
//
// The address and the token come from the admin block of the configuration
// file (-config FILE or FILE, default config.hcl; only that block is read,
// so that a file broken elsewhere still names the endpoint), or from -admin
// and -token-file, which win over the file. With -admin and no file named,
// no file is read. An unspecified host (":9090", "0.0.0.0:9090") is asked on
// loopback.
func cmdAdminPost(cmd, endpoint string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", "config.hcl", "configuration file whose admin block gives the address and the token_file (or give it as the last argument)")
	adminAddr := fs.String("admin", "", "Guard's admin address, HOST:PORT, instead of the file's admin.address")
	tokenFile := fs.String("token-file", "", "file holding the admin token, instead of the file's admin.token_file")
	certFile := fs.String("cert", "", "the admin endpoint's certificate, instead of the file's admin.tls.cert_file: ask over HTTPS, trusting exactly it")
	timeout := fs.Duration("timeout", 30*time.Second, "give up waiting for Guard's answer after this long")
	positional, err := parseFlags(fs, args)
	if err != nil {
		return flagError(stderr, cmd, err)
	}
	path, given, err := configFile(fs, positional)
	if err != nil {
		return usageError(stderr, cmd, err.Error())
	}
	if *timeout <= 0 {
		return usageError(stderr, cmd, "-timeout must be greater than zero")
	}

	addr, token, cert := *adminAddr, "", *certFile
	if addr == "" || given && (*tokenFile == "" || cert == "") {
		adm, err := config.LoadAdmin(path)
		if err != nil {
			config.WriteDiagnostics(stderr, err, 0, false)
			return exitFailure
		}
		if addr == "" {
			if adm.Address == "" {
				fmt.Fprintf(stderr, "guard %s: %s turns the admin endpoint off (admin.address = \"\"): there is nothing to ask. Give its address with -admin HOST:PORT.\n", cmd, path)
				return exitFailure
			}
			addr = adm.Address
		}
		token = adm.Token
		if cert == "" {
			cert = adm.CertFile
		}
	}
	if *tokenFile != "" {
		if token, err = config.ReadToken(*tokenFile); err != nil {
			fmt.Fprintf(stderr, "guard %s: -token-file: %v\n", cmd, err)
			return exitFailure
		}
	}
	if _, port, err := net.SplitHostPort(addr); err == nil && port == "0" {
		msg := fmt.Sprintf("admin address %q picks a free port, which only Guard knows: give the port it took with -admin HOST:PORT", addr)
		if *adminAddr != "" {
			return usageError(stderr, cmd, msg)
		}
		fmt.Fprintf(stderr, "guard %s: %s: %s\n", cmd, path, msg)
		return exitFailure
	}
	url, err := adminURL(addr, endpoint, cert != "")
	if err != nil {
		if *adminAddr != "" {
			return usageError(stderr, cmd, strings.Replace(err.Error(), "-addr", "-admin", 1))
		}
		fmt.Fprintf(stderr, "guard %s: %s: admin.address: %v\n", cmd, path, err)
		return exitFailure
	}

	transport, err := adminTransport(cert)
	if err != nil {
		fmt.Fprintf(stderr, "guard %s: admin certificate: %v\n", cmd, err)
		return exitFailure
	}
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "guard %s: %v\n", cmd, err)
		return exitFailure
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{
		Timeout:       *timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     transport, // no proxy from the environment
	}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "POST %s: %v\n", url, err)
		return exitFailure
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	line := fmt.Sprintf("POST %s: %s", url, resp.Status)
	if b := bytes.TrimRight(body, "\n"); len(b) > 0 {
		if bytes.ContainsRune(b, '\n') {
			line += "\n" + string(b)
		} else {
			line += ": " + string(b)
		}
	}
	if resp.StatusCode/100 == 2 {
		fmt.Fprintln(stdout, line)
		return exitOK
	}
	fmt.Fprintln(stderr, line)
	if resp.StatusCode == http.StatusUnauthorized && token == "" {
		fmt.Fprintf(stderr, "guard %s: Guard wants its admin token: give -token-file, or the configuration file whose admin.token_file holds it\n", cmd)
	}
	return exitFailure
}
