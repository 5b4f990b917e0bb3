package proxy

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/guard-xmpp/guard/xmpp"
)

// This file is the pipe: one direction's reads, cut into whole XMPP units
// by the tokenizer, with a buffer held only while bytes are in it.

// pipe is one direction of a connection: it reads from src and cuts the
// bytes into whole XMPP units (stream header, top-level element, stream end),
// so that only whole units are ever forwarded and a stream error can always
// be written at a unit boundary. Without a tokenizer it passes bytes as
// they come (the raw mode).
//
// The buffer is borrowed from a pool when bytes arrive and given back as
// soon as every byte in it was forwarded: an idle stream holds no buffer.
// A unit larger than the pooled buffer grows a private buffer, bounded by
// the tokenizer's unit limit.
type pipe struct {
	src  net.Conn // a socket, or TLS over one
	sock net.Conn // the socket itself: the lingering close discards its bytes below any layer
	fc   *fdConn  // on a loop: the socket, read without waiting (fillLoop); src and wait are unused
	wait *readWaiter
	tok  *xmpp.Tokenizer // nil: raw mode

	// TLS: the socket may be quiet while the TLS layer still holds whole
	// records it read ahead, so after a read that returned data the next
	// fill reads again, with a deadline in the past, before it waits.
	tls      bool
	buffered bool
	more     bool      // the last read filled the buffer: read again without waiting
	busy     bool      // on a loop: the last read filled the room it had, so the next buffer is a big one
	deadline time.Time // the read deadline set through setReadDeadline

	// park, once the relay runs, lets fill give up the goroutine after
	// parkAfter of quiet (see reactor_linux.go); nil: fill always waits in Go's
	// poller. pollDeadline is the deadline the socket has now: deadline,
	// or an earlier moment to stop waiting and park.
	park         *parker
	pollDeadline time.Time

	buf     []byte // nil when empty
	n       int    // bytes in buf
	scanned int    // bytes of buf given to tok

	// Where the last stream header scanned lies in buf (valid until the next
	// consume), for the handshake, which parses it.
	hdrStart, hdrEnd int32
	// rewrite marks the first element after each stream header (the
	// stream features) in scans, for rewriting; wantFeatures is set between
	// a header and that element.
	rewrite, wantFeatures bool
	unitStart             int // start of the unit in progress within buf
	// watch, on an s2s stream before TLS, is the unit after which the
	// pipe's source speaks TLS: scan then drops the tokenizer (s2s.go).
	watch tlsWatch
}

func newPipe(src *net.TCPConn, tok *xmpp.Tokenizer) (*pipe, error) {
	w, err := newReadWaiter(src)
	if err != nil {
		return nil, err
	}
	return &pipe{src: src, sock: src, wait: w, tok: tok, hdrStart: -1}, nil
}

// newSidePipe reads from a client connection, over TLS if it has it.
func newSidePipe(c *sideConn, tok *xmpp.Tokenizer) (*pipe, error) {
	p, err := newPipe(c.tcp, tok)
	if err != nil {
		return nil, err
	}
	p.src = c.Conn
	p.tls = c.layered()
	// The handshake may have read the first application records too.
	p.buffered = p.tls
	return p, nil
}

// setReadDeadline sets the read deadline of the source, remembered so that
// a TLS read-ahead check can put it back.
func (p *pipe) setReadDeadline(t time.Time) {
	p.deadline = t
	p.setPollDeadline(t)
}

func (p *pipe) setPollDeadline(t time.Time) {
	p.pollDeadline = t
	p.src.SetReadDeadline(t)
}

// errParked is fill's answer when the pump parked: its goroutine must
// return at once; the reactor resumes the pump in another.
var errParked = errors.New("parked")

// await waits until the source is readable, like wait.wait, but parks the
// pump (errParked) once the source has been quiet for parkAfter, unless the
// read deadline comes first.
func (p *pipe) await() error {
	if p.park == nil {
		return p.wait.wait()
	}
	now := time.Now()
	parkAt := now.Add(parkAfter)
	switch {
	case !p.deadline.IsZero() && !p.deadline.After(parkAt):
		if !p.pollDeadline.Equal(p.deadline) {
			p.setPollDeadline(p.deadline)
		}
	case p.pollDeadline.IsZero() || p.pollDeadline.After(parkAt) || p.pollDeadline.Before(now.Add(parkAfter/2)):
		// Moved only now and then on a busy stream: a park comes after
		// between parkAfter/2 and parkAfter of quiet.
		p.setPollDeadline(parkAt)
	}
	err := p.wait.wait()
	if !p.parkTime(err) {
		return err
	}
	// Quiet: park with the relay's deadline on the socket, so that a pump
	// resumed at that deadline sees it pass.
	p.setPollDeadline(p.deadline)
	if p.park.park(p.deadline) {
		return errParked
	}
	return p.wait.wait() // cannot be watched (closed, say): wait here
}

// parkTime reports whether err is the socket's deadline passing at a moment
// set to park, not at the relay's own deadline.
func (p *pipe) parkTime(err error) bool {
	if p.park == nil || err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) {
		return false
	}
	return p.deadline.IsZero() || time.Now().Before(p.deadline)
}

// unpark resumes the pump if it is parked, so that it sees its socket
// closed.
func (p *pipe) unpark() {
	if p.park != nil {
		p.park.wake()
	}
}

// scan is the outcome of one fill.
type scan struct {
	read   int  // bytes the read returned
	fwd    int  // bytes at the start of buf that form whole units
	header bool // a stream header (first or restart) is among them
	// featStart:featEnd are the stream features among them (rewrite
	// pipes only); featEnd is 0 when there are none.
	featStart, featEnd int
	end                bool              // </stream:stream> is among them
	toTLS              bool              // the unit the pipe watched for is among them: raw from now on
	drained            bool              // on a loop: the read was short, the socket is empty
	serr               *xmpp.SyntaxError // the bytes after fwd are malformed
}

// fill waits until src is readable, reads once and scans what was read.
// It returns the scan and the read error (io.EOF included), either of which
// may come with bytes to forward.
func (p *pipe) fill() (scan, error) {
	if p.buffered {
		// What TLS read ahead, if anything, without touching the socket:
		// a deadline in the past fails only a read that would wait.
		p.src.SetReadDeadline(aLongTimeAgo)
	} else if !p.more {
		if err := p.await(); err != nil {
			return scan{}, err
		}
	}
	if p.buf == nil {
		p.buf = getBuf()
	} else if p.n == len(p.buf) {
		p.grow()
	}
	k, rerr := p.src.Read(p.buf[p.n:])
	// A read that filled the buffer probably left more in the kernel: the
	// next fill reads at once instead of peeking first (a busy stream's
	// peeks were a third of its system calls). Should the socket be empty
	// after all, that read waits in the poller, no later than the moment
	// to park.
	p.more = !p.tls && rerr == nil && p.n+k == len(p.buf)
	if p.buffered {
		p.setPollDeadline(p.deadline)
		if k == 0 && errors.Is(rerr, os.ErrDeadlineExceeded) {
			rerr = nil // nothing was buffered: wait on the socket next time
		}
	}
	if k == 0 && p.parkTime(rerr) {
		// The moment to park passed between the wait and the read (or
		// in the middle of a TLS record): nothing is lost, fill again.
		rerr = nil
	}
	p.buffered = p.tls && k > 0 && rerr == nil
	p.n += k
	s := p.scan()
	s.read = k
	var se *xmpp.SyntaxError
	if s.serr == nil && errors.As(rerr, &se) {
		// A layer over the socket refused what it carried (a WebSocket's
		// binary frame or oversize message): a stream error, like the
		// tokenizer's own.
		s.serr, rerr = se, nil
	}
	if p.n == 0 {
		p.release()
	}
	return s, rerr
}

// scan runs the tokenizer over the bytes not yet scanned.
func (p *pipe) scan() scan {
	if p.tok == nil {
		p.scanned = p.n
		return scan{fwd: p.n}
	}
	var s scan
	fwd := p.unitStart
	for p.scanned < p.n {
		m, kind, err := p.tok.Next(p.buf[p.scanned:p.n])
		p.scanned += m
		if err != nil {
			var se *xmpp.SyntaxError
			if !errors.As(err, &se) {
				se = &xmpp.SyntaxError{Condition: xmpp.NotWellFormed, Msg: err.Error()}
			}
			s.serr = se
			break
		}
		switch kind {
		case xmpp.KindNone:
			continue
		case xmpp.KindHeader:
			s.header = true
			p.hdrStart, p.hdrEnd = int32(fwd), int32(p.scanned)
			p.wantFeatures = p.rewrite
		case xmpp.KindElement:
			if p.wantFeatures {
				s.featStart, s.featEnd = fwd, p.scanned
				p.wantFeatures = false
			}
			if p.watch != watchNone && p.watch.matches(p.buf[fwd:p.scanned]) {
				// TLS follows: whatever comes after goes as it is.
				p.tok, p.watch, s.toTLS = nil, watchNone, true
				p.scanned, p.unitStart = p.n, 0
				s.fwd = p.n
				return s
			}
		case xmpp.KindEnd:
			s.end = true
		}
		fwd = p.scanned
	}
	p.unitStart = fwd
	s.fwd = fwd
	return s
}

// units returns the first n bytes of the buffer, whole units to forward.
func (p *pipe) units(n int) []byte { return p.buf[:n] }

// consume drops the first n bytes (forwarded or discarded) and gives the
// buffer back when it is empty.
func (p *pipe) consume(n int) {
	if n == 0 {
		return
	}
	rest := copy(p.buf, p.buf[n:p.n])
	p.n, p.scanned, p.unitStart = rest, p.scanned-n, p.unitStart-n
	p.hdrStart, p.hdrEnd = -1, -1
	if p.n == 0 {
		p.release()
	}
}

// discardAll drops everything buffered, the unit in progress included.
func (p *pipe) discardAll() {
	p.n, p.scanned, p.unitStart = 0, 0, 0
	p.release()
}

// pending reports whether part of a unit is buffered.
func (p *pipe) pending() bool { return p.n > 0 }

func (p *pipe) release() {
	if p.buf != nil {
		putBuf(p.buf)
		p.buf = nil
	}
}

// grow replaces a full buffer with one twice as large, up to the unit limit
// plus one read.
func (p *pipe) grow() {
	limit := bufSize
	if p.tok != nil {
		limit = p.tok.MaxUnit() + p.tok.MaxHeader + bufSize
	}
	size := min(2*len(p.buf), limit)
	if size <= len(p.buf) {
		size = len(p.buf) + bufSize
	}
	if len(p.buf) == bufSize && size <= bigBufSize && limit >= bigBufSize {
		p.moveTo(getBigBuf()) // pooled, and room for the reads that follow
		return
	}
	p.moveTo(make([]byte, size))
}

// moveTo puts what the buffer holds into nb, which becomes the buffer.
func (p *pipe) moveTo(nb []byte) {
	copy(nb, p.buf[:p.n])
	putBuf(p.buf)
	p.buf = nb
}

// bufSize is the size of pooled buffers; bigBufSize that of the buffers a
// loop reads a busy stream into (loop_linux.go): on loopback one write of
// 64 KiB is one segment, where 16 KiB reads made four, and a 16 KiB stanza
// fits whole. Few streams are busy at once, so the pool of big ones is
// small.
const (
	bufSize    = 16 << 10
	bigBufSize = 64 << 10
)

var (
	bufPool    = make(chan []byte, 1024)
	bigBufPool = make(chan []byte, 32)
)

// getBuf and putBuf keep a bounded free list of buffers: a sync.Pool would
// allocate on Put (the slice header escapes) and lose its contents at each GC.
func getBuf() []byte {
	select {
	case b := <-bufPool:
		return b
	default:
		return make([]byte, bufSize)
	}
}

func putBuf(b []byte) {
	pool := bufPool
	switch cap(b) {
	case bufSize:
	case bigBufSize:
		pool = bigBufPool
	default:
		return // a grown buffer: let the GC have it
	}
	select {
	case pool <- b[:cap(b)]:
	default:
	}
}

// getBigBuf is getBuf for a busy stream on a loop.
func getBigBuf() []byte {
	select {
	case b := <-bigBufPool:
		return b
	default:
		return make([]byte, bigBufSize)
	}
}

// aLongTimeAgo is a read deadline that has passed.
var aLongTimeAgo = time.Unix(1, 0)
