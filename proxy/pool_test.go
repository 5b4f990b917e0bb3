package proxy

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/internal/prosodytest"
	"github.com/guard-xmpp/guard/internal/xmppclient"
)

// nodeOf returns the pool status of the node at addr.
func nodeOf(s *Server, backend, addr string) NodeStatus {
	for _, b := range s.Backends() {
		if b.Name != backend {
			continue
		}
		for _, n := range b.Nodes {
			if n.Address == addr {
				return n
			}
		}
	}
	return NodeStatus{}
}

// A pool of three real Prosody nodes: streams spread by least load; when a
// node is killed its clients hear a stream error (never a reset), the node
// is taken out, reconnections land on the others; when it comes back it is
// readmitted.
func TestPoolFailoverWithProsody(t *testing.T) {
	leakcheck.Check(t)
	var nodes []*prosodytest.Server
	for i := 0; i < 3; i++ {
		nodes = append(nodes, prosodytest.Start(t, prosodytest.Options{}))
	}
	pool := Backend{Name: "pool", Health: HealthCheck{Interval: 200 * time.Millisecond, Timeout: time.Second, Domain: "localhost"}}
	for _, n := range nodes {
		pool.Nodes = append(pool.Nodes, Node{Address: n.Addr})
	}
	s, addr := startGuard(t, "", ListenerConfig{Backend: pool})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	login := func(i int) *xmppclient.Client {
		t.Helper()
		c, err := xmppclient.DialOptions(ctx, addr, "localhost", "alice", "alice-pw", xmppclient.Options{Resource: fmt.Sprintf("r%d", i)})
		if err != nil {
			t.Fatalf("login %d through Guard: %v", i, err)
		}
		return c
	}
	var clients []*xmppclient.Client
	for i := 0; i < 6; i++ {
		clients = append(clients, login(i))
	}
	for _, n := range nodes {
		if got := nodeOf(s, "pool", n.Addr).Streams; got != 2 {
			t.Fatalf("node %s holds %d streams; want the 6 spread 2 by 2: %+v", n.Addr, got, s.Backends())
		}
	}

	// Node 0 dies: its two clients hear internal-server-error; the others
	// are untouched. Which clients it held, Guard's status tells (the
	// client address of each stream and its node).
	dead := nodes[0]
	onDead := map[string]bool{}
	for _, st := range s.Status().Oldest {
		if st.Node == dead.Addr {
			onDead[st.Client.String()] = true
		}
	}
	if len(onDead) != 2 {
		t.Fatalf("the status shows %d streams on %s; want 2: %+v", len(onDead), dead.Addr, s.Status().Oldest)
	}
	dead.Kill()
	var alive []*xmppclient.Client
	for _, c := range clients {
		if !onDead[c.Conn().LocalAddr().String()] {
			alive = append(alive, c)
			continue
		}
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		_, _, err := c.ReadMessage(rctx)
		rcancel()
		var se *xmppclient.StreamError
		if !errors.As(err, &se) || se.Condition != "internal-server-error" {
			t.Errorf("a client of the killed node read %v; want the stream error internal-server-error", err)
		}
		c.Close() // as a client does before it reconnects
	}
	clients = alive
	waitFor(t, "the dead node taken out", func() bool { return !nodeOf(s, "pool", dead.Addr).Up })
	waitFor(t, "the dead node's streams closed", func() bool { return nodeOf(s, "pool", dead.Addr).Streams == 0 })
	// The clients of the live nodes heard nothing of it: each still
	// exchanges a message with itself, and reads it first.
	for i, c := range clients {
		if err := c.SendMessage(c.JID(), fmt.Sprintf("still here %d", i)); err != nil {
			t.Fatalf("a client of a live node: %v", err)
		}
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		_, body, err := c.ReadMessage(rctx)
		rcancel()
		if err != nil || body != fmt.Sprintf("still here %d", i) {
			t.Fatalf("a client of a live node read %q, %v; want its own message", body, err)
		}
	}
	// Reconnections land on the healthy nodes.
	for i := 6; i < 10; i++ {
		clients = append(clients, login(i))
	}
	if n := nodeOf(s, "pool", dead.Addr).Streams; n != 0 {
		t.Fatalf("%d streams on the dead node", n)
	}
	// It comes back on the same address, and is readmitted.
	back := prosodytest.Start(t, prosodytest.Options{Addr: dead.Addr})
	waitFor(t, "the node readmitted", func() bool { return nodeOf(s, "pool", back.Addr).Up })
	clients = append(clients, login(10))
	if n := nodeOf(s, "pool", back.Addr).Streams; n != 1 {
		t.Fatalf("the readmitted node holds %d streams; the least loaded node should take the next one", n)
	}
	for _, c := range clients {
		c.Close()
	}
	waitOpen(t, s, 0)
}

// Routing by the stream's to domain: two domains on two Prosody servers;
// an unknown domain is refused with host-unknown from Guard itself.
func TestRoutingByDomain(t *testing.T) {
	leakcheck.Check(t)
	a := prosodytest.Start(t, prosodytest.Options{Domain: "a.test"})
	b := prosodytest.Start(t, prosodytest.Options{Domain: "b.test"})
	s, addr := startGuard(t, "", ListenerConfig{Routes: map[string]Backend{
		"a.test": {Name: "a", Address: a.Addr},
		"B.TEST": {Name: "b", Address: b.Addr},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, domain := range []string{"a.test", "b.test"} {
		c, err := xmppclient.Dial(ctx, addr, domain, "alice", "alice-pw")
		if err != nil {
			t.Fatalf("login to %s through Guard: %v", domain, err)
		}
		if got := c.BareJID(); got != "alice@"+domain {
			t.Fatalf("bound %s, want alice@%s", got, domain)
		}
		c.Close()
	}
	c := dial(t, addr)
	write(t, c, "<?xml version='1.0'?><stream:stream to='c.test' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")
	expectStreamError(t, c, "", true, "c.test", "host-unknown", "")
	waitOpen(t, s, 0)
}

// Without active checks, a node whose dials fail is tried, skipped for the
// next node, and ejected after consecutive failures; clients never notice.
func TestPoolPassiveEjection(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	dead := freeLoopbackAddr(t)
	s, addr := startGuard(t, "", ListenerConfig{Backend: Backend{Name: "pool", Nodes: []Node{{Address: dead}, {Address: b.addr()}}}})
	for i := 0; i < ejectAfter; i++ {
		c, bc := openStream(t, b, addr) // served by the live node every time
		c.Close()
		bc.Close()
	}
	if n := nodeOf(s, "pool", dead); !n.Ejected || n.Up {
		t.Fatalf("dead node after %d failed dials: %+v; want it ejected", ejectAfter, n)
	}
	waitOpen(t, s, 0)
}

// freeLoopbackAddr returns an address nothing listens on.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	c := dial(t, newTestBackend(t).addr())
	addr := c.LocalAddr().String() // a port in use by us, not listening
	return addr
}

// When every node of a pool refuses the connection, the client hears a
// backend failure (internal-server-error), not a reset and not the overload
// condition: nothing is full, the servers are down.
func TestPoolUnavailable(t *testing.T) {
	leakcheck.Check(t)
	s, addr := startGuard(t, "", ListenerConfig{Backend: Backend{Name: "pool", Nodes: []Node{{Address: freeLoopbackAddr(t)}, {Address: freeLoopbackAddr(t)}}}})
	c := dial(t, addr)
	write(t, c, clientHeader)
	expectStreamError(t, c, "", true, "localhost", "internal-server-error", "backend unreachable")
	waitOpen(t, s, 0)
}

// When every usable node of a pool is at its own cap, the client hears the
// overload condition (resource-constraint, or the configured redirect).
func TestPoolFull(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	s, addr := startGuard(t, "", ListenerConfig{Backend: Backend{Name: "pool", Nodes: []Node{{Address: b.addr(), MaxStreams: 1}}}})
	c0, bc0 := openStream(t, b, addr)
	c := dial(t, addr)
	write(t, c, clientHeader)
	expectStreamError(t, c, "", true, "localhost", "resource-constraint", "no server is available; try again later")
	c0.Close()
	bc0.Close()
	waitOpen(t, s, 0)
}
