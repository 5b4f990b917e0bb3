// Package sockstat reads the kernel's TCP socket tables (/proc/net/tcp and
// /proc/net/tcp6) so that tests can assert on connection states: no socket of
// this process left in CLOSE_WAIT, a backend connection gone after a close,
// a FIN rather than a reset.
//
// The tables list every socket of the network namespace, not only this
// process's; use Own to keep the sockets whose inodes this process holds.
package sockstat

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// State is a TCP state as the kernel numbers it (include/net/tcp_states.h).
type State uint8

// TCP states.
const (
	Established State = 1 + iota
	SynSent
	SynRecv
	FinWait1
	FinWait2
	TimeWait
	Close
	CloseWait
	LastAck
	Listen
	Closing
	NewSynRecv
)

var stateNames = [...]string{
	Established: "ESTABLISHED", SynSent: "SYN_SENT", SynRecv: "SYN_RECV",
	FinWait1: "FIN_WAIT1", FinWait2: "FIN_WAIT2", TimeWait: "TIME_WAIT",
	Close: "CLOSE", CloseWait: "CLOSE_WAIT", LastAck: "LAST_ACK",
	Listen: "LISTEN", Closing: "CLOSING", NewSynRecv: "NEW_SYN_RECV",
}

func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return fmt.Sprintf("STATE(%d)", uint8(s))
}

// Entry is one row of a TCP table.
type Entry struct {
	Local, Remote netip.AddrPort // IPv4-mapped IPv6 addresses are unmapped
	State         State
	TxQueue       uint64 // bytes queued to send
	RxQueue       uint64 // bytes received, not yet read
	UID           uint32
	Inode         uint64 // 0 for TIME_WAIT and other orphaned sockets
}

func (e Entry) String() string {
	return fmt.Sprintf("%s %s->%s tx=%d rx=%d inode=%d", e.State, e.Local, e.Remote, e.TxQueue, e.RxQueue, e.Inode)
}

// Sockets reads /proc/net/tcp and /proc/net/tcp6.
func Sockets() ([]Entry, error) {
	var all []Entry
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(name)
		if err != nil {
			if os.IsNotExist(err) && name == "/proc/net/tcp6" {
				continue // IPv6 disabled
			}
			return nil, err
		}
		entries, err := Parse(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("sockstat: %s: %w", name, err)
		}
		all = append(all, entries...)
	}
	return all, nil
}

// Parse reads a table in the format of /proc/net/tcp or /proc/net/tcp6.
func Parse(r io.Reader) ([]Entry, error) {
	var entries []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), 64*1024)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] == "sl" {
			continue
		}
		e, err := parseLine(fields)
		if err != nil {
			return entries, fmt.Errorf("line %d: %w", line, err)
		}
		entries = append(entries, e)
	}
	return entries, sc.Err()
}

func parseLine(f []string) (Entry, error) {
	// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
	if len(f) < 10 {
		return Entry{}, fmt.Errorf("%d fields", len(f))
	}
	var e Entry
	var err error
	if e.Local, err = parseAddrPort(f[1]); err != nil {
		return e, err
	}
	if e.Remote, err = parseAddrPort(f[2]); err != nil {
		return e, err
	}
	st, err := strconv.ParseUint(f[3], 16, 8)
	if err != nil {
		return e, fmt.Errorf("state %q: %v", f[3], err)
	}
	e.State = State(st)
	tx, rx, ok := strings.Cut(f[4], ":")
	if !ok {
		return e, fmt.Errorf("queues %q", f[4])
	}
	if e.TxQueue, err = strconv.ParseUint(tx, 16, 64); err != nil {
		return e, fmt.Errorf("tx_queue %q: %v", tx, err)
	}
	if e.RxQueue, err = strconv.ParseUint(rx, 16, 64); err != nil {
		return e, fmt.Errorf("rx_queue %q: %v", rx, err)
	}
	uid, err := strconv.ParseUint(f[7], 10, 32)
	if err != nil {
		return e, fmt.Errorf("uid %q: %v", f[7], err)
	}
	e.UID = uint32(uid)
	if e.Inode, err = strconv.ParseUint(f[9], 10, 64); err != nil {
		return e, fmt.Errorf("inode %q: %v", f[9], err)
	}
	return e, nil
}

// parseAddrPort decodes "0100007F:0016": the address is printed as 32-bit
// words in host byte order, the port in big-endian hex.
func parseAddrPort(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("address %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %v", p, err)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q", h)
	}
	b := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(b[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// Filter returns the entries whose local or remote port is port.
func Filter(entries []Entry, port uint16) []Entry {
	var out []Entry
	for _, e := range entries {
		if e.Local.Port() == port || e.Remote.Port() == port {
			out = append(out, e)
		}
	}
	return out
}

// InState returns the entries in any of the states.
func InState(entries []Entry, states ...State) []Entry {
	var out []Entry
	for _, e := range entries {
		for _, s := range states {
			if e.State == s {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// OwnInodes returns the inodes of the sockets this process holds open
// (/proc/self/fd links of the form socket:[INODE]).
func OwnInodes() (map[uint64]bool, error) {
	return inodesOf("/proc/self/fd")
}

// PIDInodes is OwnInodes for another process (for example a Prosody the
// test started).
func PIDInodes(pid int) (map[uint64]bool, error) {
	return inodesOf(fmt.Sprintf("/proc/%d/fd", pid))
}

func inodesOf(dir string) (map[uint64]bool, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	inodes := make(map[uint64]bool)
	for _, de := range des {
		link, err := os.Readlink(dir + "/" + de.Name())
		if err != nil {
			continue // closed meanwhile
		}
		if s, ok := strings.CutPrefix(link, "socket:["); ok {
			if n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				inodes[n] = true
			}
		}
	}
	return inodes, nil
}

// Own returns the entries held by this process. Orphaned sockets (TIME_WAIT,
// FIN_WAIT2 after close) have inode 0 and belong to no process.
func Own(entries []Entry) ([]Entry, error) {
	inodes, err := OwnInodes()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, e := range entries {
		if e.Inode != 0 && inodes[e.Inode] {
			out = append(out, e)
		}
	}
	return out, nil
}

// OwnSockets is Sockets filtered by Own.
func OwnSockets() ([]Entry, error) {
	all, err := Sockets()
	if err != nil {
		return nil, err
	}
	return Own(all)
}

// WaitUntil polls Sockets every 20ms until cond holds or timeout passes,
// then fails the test with the last table. It returns the entries that
// satisfied cond.
func WaitUntil(t testing.TB, timeout time.Duration, cond func([]Entry) bool) []Entry {
	t.Helper()
	const every = 20 * time.Millisecond
	deadline := time.Now().Add(timeout)
	var entries []Entry
	var err error
	for i := 0; i <= int(timeout/every)+1; i++ {
		entries, err = Sockets()
		if err == nil && cond(entries) {
			return entries
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(every)
	}
	if err != nil {
		t.Fatalf("sockstat: %v", err)
	}
	t.Fatalf("sockstat: condition not met within %v; sockets:\n%s", timeout, Format(entries))
	return nil
}

// Format renders entries one per line.
func Format(entries []Entry) string {
	var b strings.Builder
	for _, e := range entries {
		b.WriteString(e.String())
		b.WriteByte('\n')
	}
	return b.String()
}
