package fedtest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Netns is a network namespace of the test's own, with only a loopback
// interface, in which a set of names resolve to loopback addresses the
// caller chose, for every resolver the servers use:
//
//   - /etc/netns/NAME/hosts, which ip netns exec bind-mounts over
//     /etc/hosts for the commands it runs: libc's getaddrinfo reads it
//     (ejabberd's A look-up, net:getaddrinfo; Erlang's distribution);
//   - /etc/netns/NAME/resolv.conf, mounted the same way, naming
//     127.0.0.1 as the only name server;
//   - a DNS server on 127.0.0.1:53 (UDP) in the namespace, run by the test
//     process, that answers A queries for the same names, NOERROR with no
//     records for their other types (AAAA, SRV...), and NXDOMAIN for every
//     other name. Prosody without lua-unbound reads no hosts file: its own
//     resolver (net.dns) only asks the name servers of /etc/resolv.conf.
//     ejabberd's SRV look-up (inet_res) asks it too.
//
// No SRV record exists, so both servers fall back to the domain's address
// on port 5269 (RFC 6120 section 3.2.2), at once: the answer is an
// immediate NXDOMAIN, not a time-out.
type Netns struct {
	Name string

	hosts map[string]netip.Addr
	dns   *dnsServer
}

var netnsSeq atomic.Int64

// NewNetns makes the namespace, brings lo up, writes its hosts and
// resolv.conf and starts its DNS server, all undone at cleanup. hosts maps
// a lower-case domain name to the address it resolves to, in 127.0.0.0/8
// (the whole block is local on lo). It skips the test when not run as
// root, and fails it when CI is set (CI runs the tests as root).
func NewNetns(t testing.TB, hosts map[string]netip.Addr) *Netns {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("fedtest: needs root to create a network namespace, and CI must run the tests as root")
		}
		t.Skip("fedtest: needs root to create a network namespace (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("fedtest: needs ip from iproute2 (apt-get install -y iproute2)")
	}
	clean := make(map[string]netip.Addr, len(hosts))
	for name, addr := range hosts {
		if !addr.Is4() || !netip.MustParsePrefix("127.0.0.0/8").Contains(addr) {
			t.Fatalf("fedtest: %s resolves to %v: want an address in 127.0.0.0/8", name, addr)
		}
		clean[strings.TrimSuffix(strings.ToLower(name), ".")] = addr
	}
	ns := &Netns{
		Name:  fmt.Sprintf("guardfed-%d-%d", os.Getpid(), netnsSeq.Add(1)),
		hosts: clean,
	}
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		t.Fatalf("fedtest: ip netns add %s: %v\n%s", ns.Name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
			t.Errorf("fedtest: ip netns del %s: %v\n%s", ns.Name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", ns.Name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("fedtest: ip link set lo up in %s: %v\n%s", ns.Name, err, out)
	}

	etc := ns.EtcDir()
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	// /etc/netns itself stays: removing it when empty would race with a
	// parallel test's MkdirAll of its own directory there.
	t.Cleanup(func() { os.RemoveAll(etc) })
	if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte(ns.hostsText()), 0o644); err != nil {
		t.Fatal(err)
	}
	// One try, one second: the server is local and answers at once; a
	// resolver that honours these gives up fast if it is gone.
	resolv := "# Written by internal/fedtest for one test.\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n"
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte(resolv), 0o644); err != nil {
		t.Fatal(err)
	}

	var pc net.PacketConn
	var err error
	if nsErr := ns.Do(func() { pc, err = net.ListenPacket("udp4", "127.0.0.1:53") }); nsErr != nil {
		t.Fatalf("fedtest: into %s: %v", ns.Name, nsErr)
	}
	if err != nil {
		t.Fatalf("fedtest: DNS server in %s: %v", ns.Name, err)
	}
	ns.dns = serveDNS(pc, clean)
	t.Cleanup(ns.dns.close)
	return ns
}

// EtcDir is /etc/netns/NAME, the files ip netns exec mounts over /etc.
func (ns *Netns) EtcDir() string { return filepath.Join("/etc/netns", ns.Name) }

// hostsText renders the hosts file: localhost, which Erlang's
// distribution (node@localhost) needs, and the caller's names.
func (ns *Netns) hostsText() string {
	var b strings.Builder
	b.WriteString("# Written by internal/fedtest for one test.\n127.0.0.1\tlocalhost\n")
	names := make([]string, 0, len(ns.hosts))
	for n := range ns.hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s\t%s\n", ns.hosts[n], n)
	}
	return b.String()
}

// Queries returns the DNS questions the namespace's server was asked so
// far, as "HH:MM:SS.mmm NAME TYPE" (e.g. "13:20:57.270
// _xmpp-server._tcp.ejabberd.test. TypeSRV"), for a report.
func (ns *Netns) Queries() []string { return ns.dns.queries() }

// Command is an exec.Cmd that runs name in the namespace: ip netns exec
// execs it (so the PID is name's), with the namespace's hosts and
// resolv.conf mounted over /etc's.
func (ns *Netns) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Do runs fn on an OS thread switched into the namespace, so that the
// sockets fn makes live there (a socket keeps its namespace for life; it
// may be used from any goroutine afterwards).
//
// The thread is switched back before it is unlocked. Left in the
// namespace, it would exit with the goroutine, unless it is the main
// thread, which Go never ends: the process's leader would then stay in the
// namespace, and /proc/self/net/tcp (sockstat.Sockets) would show the
// namespace's sockets instead of the host's to every later test of the
// binary. If switching back fails, the thread stays locked and ends with
// its goroutine.
func (ns *Netns) Do(fn func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer home.Close()
		target, err := os.Open("/var/run/netns/" + ns.Name)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns.Name, err)
			return
		}
		fn()
		if err := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("back to the host's network namespace: %w", err)
			return // still locked: the thread ends with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	return <-errc
}

// DialContext connects from inside the namespace; its signature is
// net.Dialer.DialContext's.
func (ns *Netns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	var err error
	if nsErr := ns.Do(func() { c, err = (&net.Dialer{}).DialContext(ctx, network, addr) }); nsErr != nil {
		return nil, nsErr
	}
	return c, err
}

// Listen opens a listener inside the namespace (a proxy put between the
// servers listens there).
func (ns *Netns) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	var err error
	if nsErr := ns.Do(func() { l, err = net.Listen(network, addr) }); nsErr != nil {
		return nil, nsErr
	}
	return l, err
}

// probe opens a stream of namespace ns ("jabber:client" or
// "jabber:server") to domain at addr, inside the namespace, and reads until
// <stream:features>.
func (ns *Netns) probe(addr, xmlns, domain string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := ns.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	_, err = fmt.Fprintf(conn, "<?xml version='1.0'?><stream:stream to='%s' version='1.0' "+
		"xmlns='%s' xmlns:stream='http://etherx.jabber.org/streams'>", domain, xmlns)
	if err != nil {
		return err
	}
	var got []byte
	buf := make([]byte, 4096)
	for len(got) < 64<<10 {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if strings.Contains(string(got), "<stream:features") {
			conn.Write([]byte("</stream:stream>"))
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %q: %v", got, err)
		}
	}
	return fmt.Errorf("no features in %d bytes", len(got))
}
