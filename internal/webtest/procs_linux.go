// The processes a client started (Chromium and its helpers), found in
// /proc and ended by PID: a browser Playwright starts is in a process group
// of its own, so it does not die with node on its own.

package webtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one process, told apart from a later one with the same PID by
// its start time.
type proc struct {
	pid   int
	start string // /proc/PID/stat field 22, clock ticks since boot
}

// stat returns a process's parent PID, state and start time.
func stat(pid int) (ppid int, state byte, start string, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, "", false
	}
	// The command name is in parentheses and may hold spaces: fields are
	// counted from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, "", false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 20 {
		return 0, 0, "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0][0], f[19], true
}

// descendants returns every process below pid, at most 1000.
func descendants(pid int) []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]proc{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, start, ok := stat(p); ok {
			children[ppid] = append(children[ppid], proc{p, start})
		}
	}
	var out []proc
	queue := []int{pid}
	for len(queue) > 0 && len(out) < 1000 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// alive reports whether p is still the same, not yet dead process.
func (p proc) alive() bool {
	_, state, start, ok := stat(p.pid)
	return ok && start == p.start && state != 'Z' && state != 'X'
}

// killLeft sends SIGTERM to each process of ps still alive, waits up to
// bound for them to go, then sends SIGKILL to the rest and waits as long
// again. It returns the processes still alive after that.
func killLeft(ps []proc, bound time.Duration) []proc {
	left := ps[:0:0]
	for _, p := range ps {
		if p.alive() {
			left = append(left, p)
		}
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if len(left) == 0 {
			return nil
		}
		for _, p := range left {
			_ = syscall.Kill(p.pid, sig)
		}
		deadline := time.Now().Add(bound)
		for len(left) > 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			still := left[:0]
			for _, p := range left {
				if p.alive() {
					still = append(still, p)
				}
			}
			left = still
		}
	}
	return left
}
