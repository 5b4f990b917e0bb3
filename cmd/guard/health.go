package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/guard-xmpp/guard/config"
)

// cmdHealth is `guard health [-addr HOST:PORT] [-path PATH] [-timeout D]`:
// a probe for images without a shell or curl (distroless). It GETs
// http://ADDR/PATH once and exits 0 on 200, 1 on any other answer or
// none, 2 on bad usage, printing one line either way (stdout on success,
// stderr on failure), which Kubernetes keeps as the probe's message.
//
// An unspecified host (":9090", "0.0.0.0:9090", "[::]:9090") is asked on
// loopback, so the value of admin.address can be copied as it is.
func cmdHealth(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", config.DefaultAdminAddress, "Guard's admin address (admin.address)")
	path := fs.String("path", "/healthz", "endpoint to ask: /healthz (liveness) or /readyz (readiness)")
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	cert := fs.String("cert", "", "the admin endpoint's certificate (admin.tls.cert_file): ask over HTTPS, trusting exactly it")
	if err := fs.Parse(args); err != nil {
		return flagError(stderr, "health", err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "guard health: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "guard health: -timeout must be greater than zero")
		return 2
	}
	url, err := adminURL(*addr, *path, *cert != "")
	if err != nil {
		fmt.Fprintf(stderr, "guard health: %v\n", err)
		return 2
	}
	transport, err := adminTransport(*cert)
	if err != nil {
		fmt.Fprintf(stderr, "guard health: -cert: %v\n", err)
		return 2
	}

	client := &http.Client{
		Timeout: *timeout,
		// A probe asks one endpoint: a redirect is an unexpected answer,
		// not something to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		// No proxy from the environment, no kept connections.
		Transport: transport,
	}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintf(stderr, "unhealthy: GET %s: %v\n", url, err)
		return 1
	}
	defer resp.Body.Close()
	body := firstLine(resp.Body)
	line := fmt.Sprintf("GET %s: %s", url, resp.Status)
	if body != "" {
		line += ": " + body
	}
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(stderr, "unhealthy:", line)
		return 1
	}
	fmt.Fprintln(stdout, "healthy:", line)
	return 0
}

// adminURL builds the URL of an admin endpoint from an admin address and a
// path, over HTTPS when tls is set.
func adminURL(addr, path string, tls bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("-addr %q: want HOST:PORT, e.g. 127.0.0.1:9090", addr)
	}
	if port == "" {
		return "", fmt.Errorf("-addr %q: no port", addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if ip != nil && ip.To4() == nil {
			host = "::1"
		} else {
			host = "127.0.0.1"
		}
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, port) + path, nil
}

// firstLine returns the first line of the body, trimmed and cut to 200
// bytes, reading no more than 4 KiB.
func firstLine(r io.Reader) string {
	s, _ := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}
