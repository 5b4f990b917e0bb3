package childproc

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestMain lets this test binary be the child: with CHILDPROC_TEST_LISTEN
// set it listens on that address until killed.
func TestMain(m *testing.M) {
	if addr := os.Getenv("CHILDPROC_TEST_LISTEN"); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			os.Exit(3)
		}
		defer ln.Close()
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Listens tells a port the child holds from one another process holds
// (a port taken between its pick and the child's start) and from one
// nothing holds yet.
func TestListens(t *testing.T) {
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "CHILDPROC_TEST_LISTEN="+addr)
	p, err := Start(cmd, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	deadline := time.Now().Add(10 * time.Second)
	for err = p.Listens(addr); err != nil; err = p.Listens(addr) {
		if errors.Is(err, ErrNotOwner) || !p.Running() || time.Now().After(deadline) {
			t.Fatalf("the child's own port: %v (running %v)", err, p.Running())
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A port this process, not the child, listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := p.Listens(ln.Addr().String()); !errors.Is(err, ErrNotOwner) {
		t.Errorf("a port another process holds: %v, want ErrNotOwner", err)
	}
	// A port nothing listens on.
	if err := p.Listens(freeAddr(t)); err == nil || errors.Is(err, ErrNotOwner) {
		t.Errorf("a port nothing holds: %v, want an error other than ErrNotOwner", err)
	}
}

func TestTail(t *testing.T) {
	for _, tc := range []struct {
		s     string
		lines int
		want  string
	}{
		{"", 3, ""},
		{"a\nb\nc\n", 0, ""},
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\nc\n", 2, "c\n"},
		{"only", 5, "only"},
	} {
		if got := Tail(tc.s, tc.lines); got != tc.want {
			t.Errorf("Tail(%q, %d) = %q, want %q", tc.s, tc.lines, got, tc.want)
		}
	}
}
