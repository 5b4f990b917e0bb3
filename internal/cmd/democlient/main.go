// Command democlient is the Go half of scripts/demo.sh: it logs in to an
// XMPP server (through Guard in the demo) with internal/xmppclient, sends a
// message to itself, waits for it and closes the stream gracefully, printing
// each step.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/guard-xmpp/guard/internal/xmppclient"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5222", "server (or Guard) address")
	domain := flag.String("domain", "localhost", "XMPP domain")
	user := flag.String("user", "demo", "user name")
	password := flag.String("password", "demo-pw", "password")
	body := flag.String("body", "hello from the Go client", "message body")
	timeout := flag.Duration("timeout", 15*time.Second, "bound for the whole run")
	flag.Parse()
	if err := run(*addr, *domain, *user, *password, *body, *timeout); err != nil {
		fmt.Printf("  FAILED: %v\n", err)
		var se *xmppclient.StreamError
		if errors.As(err, &se) {
			fmt.Printf("  (the server or Guard ended the stream with <%s/>)\n", se.Condition)
		}
		os.Exit(1)
	}
}

func run(addr, domain, user, password, body string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	step := func(format string, args ...any) {
		fmt.Printf("  [%6.1fms] %s\n", float64(time.Since(start).Microseconds())/1000, fmt.Sprintf(format, args...))
	}

	step("connecting to %s as %s@%s (SASL SCRAM-SHA-1, no TLS)", addr, user, domain)
	c, err := xmppclient.Dial(ctx, addr, domain, user, password)
	if err != nil {
		return err
	}
	step("logged in, bound %s (stream id %s)", c.JID(), c.StreamID)
	step("stream features after login: %v", c.Features)

	if err := c.SendMessage(c.BareJID(), body); err != nil {
		c.Close()
		return err
	}
	step("sent %q to %s", body, c.BareJID())
	from, got, err := c.ReadMessage(ctx)
	if err != nil {
		c.Close()
		return err
	}
	if got != body {
		c.Close()
		return fmt.Errorf("echo mismatch: got %q from %s", got, from)
	}
	step("received it back from %s", from)

	if err := c.Close(); err != nil {
		return fmt.Errorf("closing: %w", err)
	}
	step("closed: sent </stream:stream>, got </stream:stream> and EOF back")
	return nil
}
