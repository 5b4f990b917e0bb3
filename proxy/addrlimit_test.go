package proxy

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/leakcheck"
	"github.com/guard-xmpp/guard/proxyproto"
)

// dialFrom dials addr from a given loopback source address.
func dialFrom(t *testing.T, src, addr string) *net.TCPConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// openStreamFrom opens a stream through Guard from src.
func openStreamFrom(t *testing.T, b *testBackend, addr, src string) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	c := dialFrom(t, src, addr)
	write(t, c, clientHeader)
	bc := b.accept(t)
	expect(t, bc, clientHeader)
	write(t, bc, backendHeader)
	expect(t, c, backendHeader)
	return c, bc
}

// Per-address limits answer with policy-violation and never touch the
// backend; other addresses are not affected.
func TestPerAddressLimits(t *testing.T) {
	leakcheck.Check(t)
	t.Run("concurrent connections", func(t *testing.T) {
		b := newTestBackend(t)
		s, addr := startGuard(t, b.addr(), ListenerConfig{Limits: AddrLimits{MaxConnsPerIP: 2}})
		a1, a1b := openStreamFrom(t, b, addr, "127.0.0.2")
		openStreamFrom(t, b, addr, "127.0.0.2")
		third := dialFrom(t, "127.0.0.2", addr)
		write(t, third, clientHeader)
		expectStreamError(t, third, "", true, "", "policy-violation", "too many connections from your address")
		b.noConn(t)
		// Another address is not affected.
		openStreamFrom(t, b, addr, "127.0.0.3")
		// When one of the two ends, the address may connect again.
		a1.Close()
		a1b.Close()
		waitOpen(t, s, 2)
		openStreamFrom(t, b, addr, "127.0.0.2")
	})
	t.Run("connection rate", func(t *testing.T) {
		b := newTestBackend(t)
		// One new connection a minute, two back to back.
		_, addr := startGuard(t, b.addr(), ListenerConfig{Limits: AddrLimits{ConnRatePerIP: 1.0 / 60, ConnBurstPerIP: 2}})
		openStreamFrom(t, b, addr, "127.0.0.4")
		openStreamFrom(t, b, addr, "127.0.0.4")
		third := dialFrom(t, "127.0.0.4", addr)
		expectStreamError(t, third, "", true, "", "policy-violation", "too many new connections; slow down")
		b.noConn(t)
		openStreamFrom(t, b, addr, "127.0.0.5")
	})
}

// Byte-rate shaping slows a client down; it loses nothing.
func TestClientByteRateShaping(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	const rate = 64 << 10
	_, addr := startGuard(t, b.addr(), ListenerConfig{Limits: AddrLimits{ClientBytesPerSecond: rate}})
	c, bc := openStream(t, b, addr)
	// Three seconds' worth beyond the one-second burst.
	payload := make([]byte, 0, 4*rate)
	for len(payload) < 4*rate {
		payload = append(payload, "<message><body>0123456789abcdef0123456789abcdef</body></message>"...)
	}
	start := time.Now()
	go c.Write(payload)
	bc.SetReadDeadline(time.Now().Add(30 * time.Second))
	got := make([]byte, len(payload))
	if _, err := readFull(bc, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != string(payload) {
		t.Fatal("shaped data was altered")
	}
	if el := time.Since(start); el < 2*time.Second {
		t.Fatalf("%d bytes at %d B/s arrived in %v: not shaped", len(payload), rate, el)
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// limits { deny }: a denied address (and one in a denied network) is
// refused with policy-violation before the backend is dialed; others pass.
func TestDeniedAddresses(t *testing.T) {
	leakcheck.Check(t)
	b := newTestBackend(t)
	deny := proxyproto.Trusted{netip.MustParsePrefix("127.0.0.2/32"), netip.MustParsePrefix("127.0.1.0/24")}
	s, addr := startGuard(t, b.addr(), ListenerConfig{Limits: AddrLimits{Deny: deny}})
	for _, src := range []string{"127.0.0.2", "127.0.1.9"} {
		c := dialFrom(t, src, addr)
		write(t, c, clientHeader)
		expectStreamError(t, c, "", true, "", "policy-violation", "connections from your address are not accepted")
		b.noConn(t)
	}
	c, bc := openStreamFrom(t, b, addr, "127.0.0.3")
	c.Close()
	bc.Close()
	waitOpen(t, s, 0)
}
