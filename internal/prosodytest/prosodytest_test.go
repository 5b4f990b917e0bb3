package prosodytest

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestStartAnswersAndStops(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{})
	if s.Domain != "localhost" || s.PID <= 0 || !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("unexpected server %+v", s)
	}
	if err := probe(s.Addr, s.Domain); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if !strings.Contains(s.Log(), "Activated service 'c2s'") {
		t.Errorf("log lacks c2s activation:\n%s", s.Log())
	}
	s.Stop()
	if s.Running() {
		t.Fatal("still running after Stop")
	}
	if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		c.Close()
		t.Fatal("port still answers after Stop")
	}
	s.Stop() // idempotent
}

func TestKill(t *testing.T) {
	t.Parallel()
	s := Start(t, Options{Domain: "example.test", Users: map[string]string{"carol": `pa"ss\word`}})
	s.Kill()
	if s.Running() {
		t.Fatal("still running after Kill")
	}
	if strings.Contains(s.Log(), "Shutdown complete") {
		t.Error("a SIGKILLed Prosody should not log a clean shutdown")
	}
}

// Several servers at once: unique ports and directories.
func TestParallelServers(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		s := Start(t, Options{})
		if seen[s.Addr] || seen[s.Dir] {
			t.Fatalf("reused %s or %s", s.Addr, s.Dir)
		}
		seen[s.Addr], seen[s.Dir] = true, true
	}
}

func TestLuaQuote(t *testing.T) {
	for in, want := range map[string]string{
		`a`:     `"a"`,
		`a"b\c`: `"a\"b\\c"`,
		"x\ny":  `"x\010y"`,
	} {
		if got := luaQuote(in); got != want {
			t.Errorf("luaQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
