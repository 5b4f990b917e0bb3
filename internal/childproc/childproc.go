// Package childproc runs the long-lived server processes tests start
// (Prosody, ejabberd): started so that they die with the test binary,
// waited for in the background, stopped by PID with SIGTERM and then
// SIGKILL, each wait bounded. It also holds the small helpers their
// start-up reports share.
package childproc

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/guard-xmpp/guard/internal/sockstat"
)

// killWait bounds the wait for a process after SIGKILL.
const killWait = 10 * time.Second

// Process is one started child.
type Process struct {
	PID int

	cmd         *exec.Cmd
	stopTimeout time.Duration
	exited      chan struct{} // closed when the process has been waited for
	waitErr     error
	stopMu      sync.Mutex
}

// Start starts cmd so that the kernel kills it if the test binary dies (a
// -timeout panic, SIGKILL: Linux ties Pdeathsig to the forking thread, and
// Go only ends threads of goroutines locked with runtime.LockOSThread), and
// waits for it in the background. Stop gives it stopTimeout after SIGTERM.
func Start(cmd *exec.Cmd, stopTimeout time.Duration) (*Process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %v", cmd.Path, err)
	}
	p := &Process{PID: cmd.Process.Pid, cmd: cmd, stopTimeout: stopTimeout, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Exited is closed once the process has exited and been waited for.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// WaitErr is what waiting for the process returned; valid once Exited is
// closed.
func (p *Process) WaitErr() error { return p.waitErr }

// Kill sends SIGKILL at once, like a crash, and waits for the process.
func (p *Process) Kill() {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	p.signalAndWait(syscall.SIGKILL, killWait)
}

// Stop sends SIGTERM and waits; after stopTimeout it sends SIGKILL.
func (p *Process) Stop() {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	if !p.signalAndWait(syscall.SIGTERM, p.stopTimeout) {
		p.signalAndWait(syscall.SIGKILL, killWait)
	}
}

// Running reports whether the process has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *Process) signalAndWait(sig syscall.Signal, bound time.Duration) bool {
	select {
	case <-p.exited:
		return true
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	t := time.NewTimer(bound)
	defer t.Stop()
	select {
	case <-p.exited:
		return true
	case <-t.C:
		return false
	}
}

// Run runs a short command, its output and errors together, killed (and
// its process group's pipes given a second) after bound.
func Run(cmd *exec.Cmd, bound time.Duration) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	timer := time.AfterFunc(bound, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return out.Bytes(), err
}

// ReadFile returns the file's content, or the error in parentheses, for a
// report.
func ReadFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return string(b)
}

// Tail returns the last lines of s.
func Tail(s string, lines int) string {
	if lines <= 0 || s == "" {
		return ""
	}
	idx := len(s)
	for i := 0; i < lines && idx > 0; i++ {
		idx = strings.LastIndexByte(s[:idx], '\n')
		if idx < 0 {
			return s
		}
	}
	return s[idx+1:]
}

// ErrNotOwner is returned by Listens when another process holds the
// listening socket: the port the test picked was taken between its check
// and the child's start, and whatever answers there is not the child.
var ErrNotOwner = errors.New("the port is another process's")

// Listens reports whether the process p holds the listening socket of addr
// (host:port): nil if it does, ErrNotOwner if another process does, or
// another error (nothing listens there yet). A child that could not bind
// a port another process took would otherwise pass a readiness probe
// answered by that other process.
func (p *Process) Listens(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return err
	}
	all, err := sockstat.Sockets()
	if err != nil {
		return err
	}
	mine, err := sockstat.PIDInodes(p.PID)
	if err != nil {
		return err
	}
	found := false
	for _, e := range all {
		if e.State != sockstat.Listen || e.Local.Port() != ap.Port() || (e.Local.Addr() != ap.Addr() && !e.Local.Addr().IsUnspecified()) {
			continue
		}
		if mine[e.Inode] {
			return nil
		}
		found = true
	}
	if found {
		return fmt.Errorf("%s: %w", addr, ErrNotOwner)
	}
	return fmt.Errorf("nothing listens on %s", addr)
}

// Buffer collects a process's output: safe to read while it runs.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
