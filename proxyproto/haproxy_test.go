package proxyproto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/childproc"
	"github.com/guard-xmpp/guard/internal/leakcheck"
)

// The HAProxy interoperability test runs Debian's haproxy on loopback:
// HAProxy sends headers (send-proxy, send-proxy-v2, with options, and in
// health checks) to a Go listener that reads them with Read, and HAProxy
// receives headers written by AppendV1 and AppendV2 (accept-proxy) and
// relays what it understood to the same listener.

const haproxyPath = "/usr/sbin/haproxy"

// received is what the Go backend saw on one connection.
type received struct {
	h       Header
	err     error
	payload string
	peer    netip.AddrPort // HAProxy's end of the connection
}

// startBackend listens on addr and reads a header and then everything up to
// EOF from each connection. The listener and its goroutines end with the
// test.
func startBackend(t *testing.T, addr string) (netip.AddrPort, <-chan received) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan received, 256)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				h, err := Read(c)
				var rest []byte
				if err == nil {
					rest, _ = io.ReadAll(io.LimitReader(c, 4096))
				}
				select {
				case ch <- received{h, err, string(rest), c.RemoteAddr().(*net.TCPAddr).AddrPort()}:
				default: // nobody is looking (health checks piling up)
				}
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).AddrPort(), ch
}

// waitFor returns the first connection the backend reports that satisfies
// ok, skipping others (such as health checks).
func waitFor(t *testing.T, ch <-chan received, ok func(received) bool) received {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case r := <-ch:
			if ok(r) {
				return r
			}
		case <-timeout:
			t.Fatal("the backend received no matching connection within 5s")
		}
	}
}

func withPayload(p string) func(received) bool {
	return func(r received) bool { return r.payload == p }
}

// freePort returns a loopback address with a port that was free a moment
// ago.
func freePort(t *testing.T, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startHAProxy runs haproxy in the foreground with the configuration
// mkcfg builds (with the address that says it is ready) and waits until it
// accepts connections there. The ports mkcfg picks were free a moment ago;
// should another process take one meanwhile, haproxy cannot bind it and
// exits, and the start is tried again with ports picked anew (at most three
// times). It stops the process it started, by its PID, when the test ends.
func startHAProxy(t *testing.T, mkcfg func() (cfg, ready string)) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		cfg, ready := mkcfg()
		out, err := tryHAProxy(t, cfg, ready)
		if err == nil {
			return
		}
		if attempt == 3 || !strings.Contains(out, "cannot bind") {
			t.Fatalf("%v:\n%s", err, out)
		}
		t.Logf("haproxy could not bind a port picked free (attempt %d); trying new ports", attempt)
	}
}

// tryHAProxy starts haproxy once; an error says why it is not ready, with
// its output.
func tryHAProxy(t *testing.T, cfg, ready string) (string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var out childproc.Buffer
	cmd := exec.Command(haproxyPath, "-db", "-f", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.DialTimeout("tcp", ready, time.Second)
		if err == nil {
			c.Close()
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("haproxy output:\n%s", out.String())
				}
			})
			return "", nil
		}
		select {
		case <-done:
			return out.String(), errors.New("haproxy exited")
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return out.String(), fmt.Errorf("haproxy not ready on %s: %v", ready, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exchange connects to addr from local (if set), writes data, half-closes
// and waits for the connection to end. It returns the client's address.
func exchange(t *testing.T, local, addr string, data []byte) netip.AddrPort {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(data); err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).CloseWrite()
	if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("waiting for the end of the connection: %v", err)
	}
	return c.LocalAddr().(*net.TCPAddr).AddrPort()
}

func TestHAProxyInterop(t *testing.T) {
	// -short skips it outside CI only: under CI a run with -short must
	// not hide the interoperability test.
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("starts haproxy")
	}
	if _, err := os.Stat(haproxyPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("haproxy not installed (Debian package haproxy, which CI must install): %v", err)
		}
		t.Skipf("haproxy not installed (apt-get install haproxy): %v", err)
	}
	leakcheck.Check(t)

	backend, got := startBackend(t, "127.0.0.1:0")
	check1, gotCheck1 := startBackend(t, "127.0.0.1:0")
	check2, gotCheck2 := startBackend(t, "127.0.0.1:0")
	var feV1, feV2, feOpts, feAccept, feOpts6 string
	startHAProxy(t, func() (string, string) {
		var ready string
		feV1, feV2, feOpts, feAccept, ready = freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"),
			freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
		feOpts6 = ""
		if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
			feOpts6 = ln.Addr().String()
			ln.Close()
		}
		bind6 := ""
		if feOpts6 != "" {
			bind6 = "  bind " + feOpts6
		}
		return haproxyConfig(ready, feV1, feV2, feOpts, bind6, feAccept, backend.String(), check1.String(), check2.String()), ready
	})

	// HAProxy as the sender: Read must report the test client's own address
	// and port, the frontend as destination, and leave the client's bytes.
	sendTests := []struct {
		name, local, fe string
		version         int
	}{
		{"send-proxy", "127.0.0.1", feV1, 1},
		{"send-proxy-v2", "127.0.0.1", feV2, 2},
		{"send-proxy-v2 options", "127.0.0.1", feOpts, 2},
		{"send-proxy-v2 options IPv6", "::1", feOpts6, 2},
	}
	for i, tt := range sendTests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fe == "" {
				t.Skip("no IPv6 loopback")
			}
			p := fmt.Sprintf("%s<!-- %d -->", payload, i)
			client := exchange(t, tt.local, tt.fe, []byte(p))
			r := waitFor(t, got, withPayload(p))
			if r.err != nil {
				t.Fatalf("Read: %v", r.err)
			}
			t.Logf("client %v: %+v", client, r.h)
			want := Header{Version: tt.version, Command: Proxy, Source: client, Dest: netip.MustParseAddrPort(tt.fe)}
			if r.h.Version != want.Version || r.h.Command != want.Command || r.h.Source != want.Source || r.h.Dest != want.Dest {
				t.Errorf("Read = %+v, want %+v", r.h, want)
			}
			if tt.fe == feOpts || tt.fe == feOpts6 {
				// crc32c was verified by Read; unique-id is %ci:%cp.
				if _, ok := r.h.Lookup(TypeCRC32C); !ok {
					t.Error("no CRC32C TLV")
				}
				id, _ := r.h.Lookup(TypeUniqueID)
				if wantID := client.Addr().String() + ":" + fmt.Sprint(client.Port()); string(id) != wantID {
					t.Errorf("unique ID %q, want %q", id, wantID)
				}
			}
		})
	}

	// Health checks carry no client: version 2 sends LOCAL.
	t.Run("health check send-proxy-v2", func(t *testing.T) {
		r := waitFor(t, gotCheck2, func(received) bool { return true })
		t.Logf("check from %v: %+v, %v", r.peer, r.h, r.err)
		if r.err != nil || r.h.Version != 2 || r.h.Command != Local || r.h.Source.IsValid() {
			t.Errorf("Read = %+v, %v; want a version 2 LOCAL header", r.h, r.err)
		}
	})
	t.Run("health check send-proxy", func(t *testing.T) {
		r := waitFor(t, gotCheck1, func(received) bool { return true })
		t.Logf("check from %v: %+v, %v", r.peer, r.h, r.err)
		if r.err != nil || r.h.Version != 1 {
			t.Fatalf("Read = %+v, %v; want a version 1 header", r.h, r.err)
		}
		// The specification asks senders to fill a check's line with the
		// connection's own endpoints rather than send UNKNOWN.
		if r.h.Source.IsValid() && (r.h.Source != r.peer || r.h.Dest != check1) {
			t.Errorf("check header %v -> %v, connection %v -> %v", r.h.Source, r.h.Dest, r.peer, check1)
		}
	})

	// HAProxy as the receiver (accept-proxy): it must accept what AppendV1
	// and AppendV2 write and relay those addresses in its own version 2
	// header.
	spoof4 := Header{Command: Proxy, Source: ap("203.0.113.7:4242"), Dest: ap("198.51.100.1:5222")}
	spoof6 := Header{Command: Proxy, Source: ap("[2001:db8::7]:4242"), Dest: ap("[2001:db8::1]:5222"), TLVs: []TLV{
		{TypeCRC32C, make([]byte, 4)}, {TypeAuthority, []byte("example.net")}, {TypeNoop, []byte("pad")}}}
	acceptTests := []struct {
		name string
		wire []byte
		want Header // Source zero: the test client's address
	}{
		{"AppendV1 TCP4", spoof4.AppendV1(nil), spoof4},
		{"AppendV1 mixed families", Header{Command: Proxy, Source: spoof4.Source, Dest: spoof6.Dest}.AppendV1(nil),
			Header{Command: Proxy, Source: ap("[::ffff:203.0.113.7]:4242"), Dest: spoof6.Dest}},
		{"AppendV1 UNKNOWN", Header{Command: Local}.AppendV1(nil), Header{Command: Proxy}},
		{"AppendV2 TCP4", spoof4.AppendV2(nil), spoof4},
		{"AppendV2 TCP6 TLVs", spoof6.AppendV2(nil), spoof6},
		{"AppendV2 LOCAL", Header{Command: Local}.AppendV2(nil), Header{Command: Proxy}},
	}
	for i, tt := range acceptTests {
		t.Run("accept-proxy "+tt.name, func(t *testing.T) {
			p := fmt.Sprintf("%s<!-- accept %d -->", payload, i)
			client := exchange(t, "127.0.0.1", feAccept, append(tt.wire, p...))
			r := waitFor(t, got, withPayload(p))
			if r.err != nil {
				t.Fatalf("Read: %v", r.err)
			}
			t.Logf("sent %q, HAProxy relayed %+v", tt.wire, r.h)
			want := tt.want
			if !want.Source.IsValid() {
				want.Source, want.Dest = client, netip.MustParseAddrPort(feAccept)
			}
			if r.h.Source != want.Source || r.h.Dest != want.Dest {
				t.Errorf("HAProxy relayed %v -> %v, want %v -> %v", r.h.Source, r.h.Dest, want.Source, want.Dest)
			}
			if a, ok := tt.want.Lookup(TypeAuthority); ok {
				if b, _ := r.h.Lookup(TypeAuthority); !bytes.Equal(a, b) {
					t.Errorf("HAProxy relayed authority %q, want %q", b, a)
				}
			}
		})
	}

	// A corrupted checksum must make HAProxy drop the connection: this shows
	// that HAProxy checks the CRC32C that AppendV2 computes.
	t.Run("accept-proxy bad CRC32C", func(t *testing.T) {
		wire := spoof6.AppendV2(nil)
		crcAt := bytes.Index(wire, []byte{TypeCRC32C, 0, 4}) + 3
		wire[crcAt] ^= 0xff
		p := payload + "<!-- bad crc -->"
		exchange(t, "127.0.0.1", feAccept, append(wire, p...))
		select {
		case r := <-got:
			if r.payload == p {
				t.Fatalf("HAProxy relayed a header with a bad checksum: %+v", r.h)
			}
		case <-time.After(500 * time.Millisecond):
		}
	})
}

// haproxyConfig is the interoperability test's configuration: a readiness
// frontend, frontends sending v1, v2, v2 with options and accepting PROXY
// headers, and health checks with each version.
func haproxyConfig(ready, feV1, feV2, feOpts, bind6, feAccept, backend, check1, check2 string) string {
	return fmt.Sprintf(`
global
  nbthread 1
defaults
  mode tcp
  timeout connect 2s
  timeout client 10s
  timeout server 10s
frontend ready
  bind %[1]s
  tcp-request connection reject
frontend fe_v1
  bind %[2]s
  default_backend be_v1
frontend fe_v2
  bind %[3]s
  default_backend be_v2
frontend fe_opts
  bind %[4]s
%[5]s
  unique-id-format %%ci:%%cp
  default_backend be_opts
frontend fe_accept
  bind %[6]s accept-proxy
  unique-id-format %%ci:%%cp
  default_backend be_opts
backend be_v1
  server s1 %[7]s send-proxy
backend be_v2
  server s1 %[7]s send-proxy-v2
backend be_opts
  server s1 %[7]s send-proxy-v2 proxy-v2-options crc32c,unique-id,authority
backend be_check_v1
  server c1 %[8]s send-proxy check inter 200ms
backend be_check_v2
  server c2 %[9]s send-proxy-v2 check inter 200ms
`, ready, feV1, feV2, feOpts, bind6, feAccept, backend, check1, check2)
}
