package sockstat

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Captured from a little-endian machine.
const tcp4 = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 576 1 00000000c5c7cee2 100 0 0 10 0
   1: 0100007F:A905 0100007F:9AC6 06 00000000:00000000 03:000007AA 00000000     0        0 0 3 0000000001d4470b
   2: 0100007F:1466 0100007F:D2F0 08 00000000:0000001F 00:00000000 00000000  1000        0 48211 1 0000000088ae28b4 20 4 30 10 -1
   3: 0100007F:D2F0 0100007F:1466 05 0000002A:00000000 00:00000000 00000000  1000        0 0 3 0000000088ae28b5
`

const tcp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1466 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9911 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:1466 00000000000000000000000001000000:B0A2 01 00000000:00000000 00:00000000 00000000     0        0 9912 1 0000000000000000 20 4 30 10 -1
   2: 0000000000000000FFFF00000100007F:1466 0000000000000000FFFF00000100007F:B0A4 09 00000001:00000000 01:00000031 00000000     0        0 9913 1 0000000000000000 20 4 30 10 -1
`

func TestParse(t *testing.T) {
	got, err := Parse(strings.NewReader(tcp4 + tcp6))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Local: ap("0.0.0.0:2024"), Remote: ap("0.0.0.0:0"), State: Listen, Inode: 576},
		{Local: ap("127.0.0.1:43269"), Remote: ap("127.0.0.1:39622"), State: TimeWait},
		{Local: ap("127.0.0.1:5222"), Remote: ap("127.0.0.1:54000"), State: CloseWait, RxQueue: 31, UID: 1000, Inode: 48211},
		{Local: ap("127.0.0.1:54000"), Remote: ap("127.0.0.1:5222"), State: FinWait2, TxQueue: 42, UID: 1000},
		{Local: ap("[::]:5222"), Remote: ap("[::]:0"), State: Listen, Inode: 9911},
		{Local: ap("[::1]:5222"), Remote: ap("[::1]:45218"), State: Established, Inode: 9912},
		{Local: ap("127.0.0.1:5222"), Remote: ap("127.0.0.1:45220"), State: LastAck, TxQueue: 1, Inode: 9913},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d:\n%s", len(got), len(want), Format(got))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d:\n got %v\nwant %v", i, got[i], want[i])
		}
	}
	if n := len(Filter(got, 5222)); n != 5 {
		t.Errorf("Filter(5222) = %d entries, want 5", n)
	}
	if n := len(InState(got, CloseWait, LastAck)); n != 2 {
		t.Errorf("InState = %d entries, want 2", n)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"   0: 0100007F 0100007F:9AC6 06 00000000:00000000 03:000007AA 00000000 0 0 0 3\n",
		"   0: 0100007F:A905 0100007F:9AC6 ZZ 00000000:00000000 03:000007AA 00000000 0 0 0 3\n",
		"   0: 0100007F:A905 0100007F:9AC6\n",
		"   0: 0100:A905 0100007F:9AC6 06 00000000:00000000 03:000007AA 00000000 0 0 0 3\n",
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
}

func TestStateString(t *testing.T) {
	if CloseWait.String() != "CLOSE_WAIT" || State(99).String() != "STATE(99)" {
		t.Fatal(CloseWait.String(), State(99).String())
	}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// Live: a peer's FIN leaves our unclosed socket in CLOSE_WAIT, and Own
// finds it as ours.
func TestLiveCloseWait(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close() // FIN to s; s is not closed: CLOSE_WAIT
	entries := WaitUntil(t, 5*time.Second, func(es []Entry) bool {
		own, err := Own(InState(Filter(es, port), CloseWait))
		return err == nil && len(own) == 1
	})
	s.Close()
	WaitUntil(t, 5*time.Second, func(es []Entry) bool {
		own, err := Own(InState(Filter(es, port), CloseWait))
		return err == nil && len(own) == 0
	})
	_ = entries
}
