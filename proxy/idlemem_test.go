package proxy

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// An idle stream holds no copy buffer: Guard's heap grows by well under one
// pipe buffer (bufSize) per stream for streams that relayed both ways and
// then went quiet, where a stream that kept the buffers of its two pipes
// would cost two. Each stream first relays a bulk both ways, so that on a
// loop it is read into big buffers (bigBufSize) as a busy stream is: those
// too go back when it is quiet. The goroutines of idle streams are
// TestIdleStreamsPark's.
//
// Guard keeps a bounded free list of buffers, shared by the package: a
// buffer an idle stream held could have come from what earlier tests left
// there, without the heap growing. So the measure runs in a fresh process
// (this test binary, run again for this test only), whose free list starts
// empty.
func TestIdleStreamsHoldNoBuffer(t *testing.T) {
	if os.Getenv("GUARD_TEST_IDLE_HEAP") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestIdleStreamsHoldNoBuffer$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "GUARD_TEST_IDLE_HEAP=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the measure, in its own process: %v\n%s", err, out)
		}
		t.Logf("the measure, in its own process:\n%s", out)
		return
	}
	const n = 200
	b := newTestBackend(t)
	s := New(Options{Logger: hclog.NewNullLogger()}) // a test log would grow the heap with every stream
	t.Cleanup(func() { s.Close() })
	la, err := s.Listen(ListenerConfig{Name: "test", Address: "127.0.0.1:0", Backend: Backend{Name: "b", Address: b.addr()}})
	if err != nil {
		t.Fatal(err)
	}
	addr := la.String()
	// Each stream first carries a bulk of stanzas each way, so that its
	// reads fill their buffers and a loop reads it into big ones (a busy
	// stream's); then it goes quiet.
	bulk := strings.Repeat(message, 128<<10/len(message))
	use := func() (func(), func()) {
		c, bc := openStream(t, b, addr)
		write(t, c, bulk)
		expect(t, bc, bulk)
		write(t, bc, bulk)
		expect(t, c, bulk)
		write(t, c, message)
		expect(t, bc, message)
		return func() { c.Close() }, func() { bc.Close() }
	}
	// What the first streams set up once (the reactor, pools of the
	// runtime) is not the streams' cost.
	for range 4 {
		cc, bcc := use()
		cc()
		bcc()
	}
	waitOpen(t, s, 0)
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		// Free buffers in the package's pools are nobody's: not counted.
		pooled := uint64(len(bufPool)*bufSize + len(bigBufPool)*bigBufSize)
		return ms.HeapAlloc - pooled
	}
	before := heap()
	for range n {
		use()
	}
	waitOpen(t, s, n)
	after := heap()
	grown := int64(after) - int64(before)
	t.Logf("%d idle streams: the live heap grew by %d bytes, %d a stream; a pipe buffer is %d", n, grown, grown/n, bufSize)
	if grown > n*bufSize/2 {
		t.Errorf("%d idle streams grew the live heap by %d bytes (%d a stream): more than half a buffer (%d bytes) a stream", n, grown, grown/n, bufSize/2)
	}
}
