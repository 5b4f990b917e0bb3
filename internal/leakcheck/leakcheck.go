// Package leakcheck fails a test whose goroutines or open file descriptors do
// not return to their level at the start of the test.
//
// Check counts goroutines and /proc/self/fd entries when called, and
// registers a t.Cleanup that polls (bounded) until both are back at or below
// that baseline; on failure it prints the goroutines that are new and the
// open fds. Counts are process-wide: do not combine Check with t.Parallel
// tests in the same package, or their goroutines count against each other.
//
// Call Check first in a test, before starting servers whose own t.Cleanup
// stops them: cleanups run last-registered first, so those stop before the
// leak check runs.
package leakcheck

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// DefaultTimeout bounds the wait for goroutines and fds to go away.
const DefaultTimeout = 5 * time.Second

// Check records the baseline and registers the cleanup check.
func Check(t testing.TB) { CheckTimeout(t, DefaultTimeout) }

// CheckTimeout is Check with a different bound.
func CheckTimeout(t testing.TB, timeout time.Duration) {
	t.Helper()
	baseG := runtime.NumGoroutine()
	baseStacks := goroutineIDs(allStacks())
	baseFDs, err := openFDs()
	if err != nil {
		t.Fatalf("leakcheck: %v", err)
	}
	t.Cleanup(func() {
		const every = 10 * time.Millisecond
		deadline := time.Now().Add(timeout)
		var g int
		var fds map[string]string
		for i := 0; i <= int(timeout/every)+1; i++ {
			g = runtime.NumGoroutine()
			fds, err = openFDs()
			if err == nil && g <= baseG && len(fds) <= len(baseFDs) {
				return
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(every)
		}
		if err != nil {
			t.Errorf("leakcheck: %v", err)
			return
		}
		var msg strings.Builder
		if g > baseG {
			fmt.Fprintf(&msg, "leakcheck: %d goroutines, baseline %d, after %v. New goroutines:\n\n", g, baseG, timeout)
			for _, s := range newStacks(allStacks(), baseStacks) {
				msg.WriteString(s)
				msg.WriteString("\n\n")
			}
		}
		if len(fds) > len(baseFDs) {
			fmt.Fprintf(&msg, "leakcheck: %d open fds, baseline %d, after %v. New or changed fds:\n", len(fds), len(baseFDs), timeout)
			for _, fd := range sortedKeys(fds) {
				if baseFDs[fd] != fds[fd] {
					fmt.Fprintf(&msg, "  fd %s -> %s\n", fd, fds[fd])
				}
			}
		}
		t.Error(msg.String())
	})
}

// openFDs maps fd number to link target.
func openFDs() (map[string]string, error) {
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	fds := make(map[string]string, len(des))
	for _, de := range des {
		link, err := os.Readlink("/proc/self/fd/" + de.Name())
		if err != nil {
			continue // the directory's own fd, closed by now
		}
		fds[de.Name()] = link
	}
	return fds, nil
}

func allStacks() []byte {
	buf := make([]byte, 1<<20)
	for i := 0; i < 6; i++ {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
	return buf
}

// goroutineIDs returns the header lines ("goroutine 12") of a dump.
func goroutineIDs(dump []byte) map[string]bool {
	ids := map[string]bool{}
	for _, g := range bytes.Split(dump, []byte("\n\n")) {
		ids[goroutineID(string(g))] = true
	}
	return ids
}

func goroutineID(stack string) string {
	head, _, _ := strings.Cut(stack, " [")
	return head
}

func newStacks(dump []byte, base map[string]bool) []string {
	var out []string
	for _, g := range bytes.Split(bytes.TrimSpace(dump), []byte("\n\n")) {
		s := string(g)
		if !base[goroutineID(s)] {
			out = append(out, s)
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) < len(keys[j])
		}
		return keys[i] < keys[j]
	})
	return keys
}
