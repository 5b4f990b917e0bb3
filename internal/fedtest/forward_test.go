package fedtest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// With prosody.test resolving to one address and Prosody's s2s port at
// another, ejabberd reaches Prosody only through whatever listens at the
// first and forwards to the second: here a plain TCP forwarder, where a
// later test puts Guard. Its streams (messages and dialback verifications)
// pass through it, in both modes, and federation works as directly.
func TestFederationThroughForwarder(t *testing.T) {
	for _, mode := range []Mode{Dialback, External} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			front := netip.MustParseAddr("127.0.0.2")
			back := netip.MustParseAddrPort("127.0.0.3:5269")
			f := Start(t, Options{Mode: mode, ProsodyAddr: front, ProsodyS2S: back})
			fw := forward(t, f.Netns, netip.AddrPortFrom(front, 5269).String(), back.String())

			alice := f.Prosody.Login(t, "alice")
			bob := f.Ejabberd.Login(t, "bob")
			exchange(t, alice, bob, "1")
			checkAuths(t, f, mode)
			if fw.accepted.Load() == 0 {
				t.Error("no connection went through the forwarder")
			}
			for _, a := range f.Auths() {
				// ejabberd's outbound streams go to prosody.test: to the
				// forwarder's address.
				if a.Direction == "outbound" && a.Peer != front.String() {
					t.Errorf("ejabberd's outbound stream went to %s, want the forwarder at %s: %+v", a.Peer, front, a)
				}
			}
		})
	}
}

// forwarder relays each connection accepted at one address to another,
// both in the namespace, passing each direction's end on (CloseWrite).
type forwarder struct {
	accepted atomic.Int64
}

// forward listens at from in ns and forwards to to until cleanup, which
// closes the listener and every relayed connection and waits for them.
func forward(t *testing.T, ns *Netns, from, to string) *forwarder {
	t.Helper()
	ln, err := ns.Listen("tcp", from)
	if err != nil {
		t.Fatal(err)
	}
	fw := &forwarder{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			c.Close()
			return false
		}
		conns = append(conns, c)
		return true
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("forwarder: accept: %v", err)
				}
				return
			}
			fw.accepted.Add(1)
			if !track(c) {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
				b, err := ns.DialContext(dctx, "tcp", to)
				dcancel()
				if err != nil {
					c.Close()
					return
				}
				if !track(b) {
					c.Close()
					return
				}
				var pair sync.WaitGroup
				for _, p := range [][2]net.Conn{{b, c}, {c, b}} {
					pair.Add(1)
					go func() {
						defer pair.Done()
						io.Copy(p[0], p[1])
						p[0].(*net.TCPConn).CloseWrite()
					}()
				}
				pair.Wait()
				c.Close()
				b.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		cancel()
		ln.Close()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return fw
}
