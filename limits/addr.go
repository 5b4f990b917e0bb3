package limits

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Errors returned by [AddrLimiter.Admit].
var (
	// ErrTooManyConns: the address already holds MaxConns connections.
	ErrTooManyConns = errors.New("limits: too many connections from this address")
	// ErrRateLimited: the address opened connections faster than Rate allows.
	ErrRateLimited = errors.New("limits: connection rate exceeded for this address")
	// ErrAddrTableFull: the address is new, and all MaxKeys tracked addresses
	// hold open connections, so none can be forgotten to make room. This is
	// load, not the client's fault: the proxy should answer it like a full
	// admission queue (resource-constraint), not as a policy violation.
	ErrAddrTableFull = errors.New("limits: address table full of open connections")
)

// DefaultMaxKeys is the address table bound used when [AddrLimits.MaxKeys] is 0.
const DefaultMaxKeys = 100_000

// AddrLimits configures an [AddrLimiter]. The zero value limits nothing and
// tracks no address.
type AddrLimits struct {
	// MaxConns caps the connections one key holds at once; 0 means no cap.
	MaxConns int
	// Rate is the sustained rate of new connections per key, per second;
	// 0 means no limit. Use rate.Every(d) for one connection every d.
	Rate rate.Limit
	// Burst is how many new connections a key may open back to back before
	// Rate applies; values below 1 mean 1. Ignored when Rate is 0.
	Burst int
	// MaxKeys bounds the number of keys tracked, and so the memory used
	// (a few hundred bytes a key); 0 means DefaultMaxKeys.
	MaxKeys int
}

func (l AddrLimits) normalize() AddrLimits {
	l.MaxConns = max(l.MaxConns, 0)
	if l.Rate <= 0 {
		l.Rate, l.Burst = 0, 0
	} else {
		l.Burst = max(l.Burst, 1)
	}
	if l.MaxKeys <= 0 {
		l.MaxKeys = DefaultMaxKeys
	}
	return l
}

// Key returns the key a client address is limited under: an IPv4 address (or
// an IPv4-mapped IPv6 one, unmapped first) is its own /32; an IPv6 address is
// grouped with the rest of its /64, the smallest block a site is normally
// given, so one host cannot evade its limit by rotating its interface ID.
// Zones are dropped. The zero Addr gives the zero Prefix.
func Key(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := 64
	if ip.Is4() {
		bits = 32
	}
	p, _ := ip.Prefix(bits) // cannot fail: bits fits both families; zero Addr gives zero Prefix
	return p
}

// AddrLimiter limits, per client key (see [Key]), the connections open at
// once and the rate of new ones. It is safe for concurrent use.
//
// # Memory bound and eviction policy
//
// The limiter tracks at most MaxKeys keys. A key with open connections is
// busy; its count is never forgotten, so it is never evicted. A key without
// open connections is idle and sits in an LRU list (most recently used
// first), where it is only remembered for its rate bucket:
//
//   - When Rate is 0 there is nothing to remember, so a key is dropped as
//     soon as its last connection ends.
//   - Each Admit also drops up to two idle keys from the LRU tail whose
//     bucket has refilled to Burst: forgetting them changes no decision.
//   - A new key arriving at a full table evicts the least recently used idle
//     key even if its bucket is not full. That key's rate history is lost,
//     which a flood of distinct addresses could exploit to reset someone's
//     bucket; the bound on memory takes precedence.
//   - If every tracked key is busy, a new key is refused with
//     ErrAddrTableFull. Admitting it untracked would let an attacker that
//     fills the table with MaxKeys open connections then open any number of
//     connections from one more address, free of every per-address limit;
//     refusing instead makes MaxKeys a cap on distinct busy addresses, which
//     is already far above what the backend gate admits. Keys already
//     tracked are unaffected. Size MaxKeys above the expected number of
//     distinct concurrent client addresses.
type AddrLimiter = KeyLimiter[netip.Prefix]

// KeyLimiter is the limiter of [AddrLimiter] over any key: the streams of
// one XMPP domain, say, keyed by the domain's name. Everything said of
// addresses there holds of its keys.
type KeyLimiter[K comparable] struct {
	mu      sync.Mutex
	lim     AddrLimits
	gen     uint64 // bumped by SetLimits; entries catch up lazily
	entries map[K]*addrEntry[K]
	idle    idleList[K] // entries with conns == 0, most recently used at the front
}

type addrEntry[K comparable] struct {
	key    K
	conns  int
	gen    uint64
	bucket *rate.Limiter // nil when Rate is 0

	// Links in AddrLimiter.idle while conns == 0. The list is intrusive, so
	// a connection's admission and release move no allocation.
	idle       bool
	prev, next *addrEntry[K]
}

// idleList is the LRU of idle entries: a doubly linked list through the
// entries themselves.
type idleList[K comparable] struct {
	front, back *addrEntry[K]
	n           int
}

func (q *idleList[K]) pushFront(e *addrEntry[K]) {
	e.prev, e.next = nil, q.front
	if q.front == nil {
		q.back = e
	} else {
		q.front.prev = e
	}
	q.front = e
	e.idle = true
	q.n++
}

func (q *idleList[K]) remove(e *addrEntry[K]) {
	if !e.idle {
		return
	}
	if e.prev == nil {
		q.front = e.next
	} else {
		e.prev.next = e.next
	}
	if e.next == nil {
		q.back = e.prev
	} else {
		e.next.prev = e.prev
	}
	e.prev, e.next = nil, nil
	e.idle = false
	q.n--
}

func (q *idleList[K]) moveToFront(e *addrEntry[K]) {
	if q.front != e {
		q.remove(e)
		q.pushFront(e)
	}
}

// NewAddrLimiter returns a limiter with the given limits; see [AddrLimits]
// for what zero values mean.
func NewAddrLimiter(l AddrLimits) *AddrLimiter { return NewKeyLimiter[netip.Prefix](l) }

// NewKeyLimiter returns a limiter over keys of type K with the given limits.
func NewKeyLimiter[K comparable](l AddrLimits) *KeyLimiter[K] {
	return &KeyLimiter[K]{
		lim:     l.normalize(),
		entries: make(map[K]*addrEntry[K]),
	}
}

// SetLimits replaces the limits, for a configuration reload. Existing keys
// keep their connection counts and their buckets' levels; the new rate and
// burst apply to each from its next Admit. Lowering MaxConns closes nothing:
// a key above the new cap is refused until it drops below it. Lowering
// MaxKeys evicts idle keys at once down to the new bound; busy keys stay
// until their connections end.
func (l *KeyLimiter[K]) SetLimits(lim AddrLimits) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lim = lim.normalize()
	l.gen++
	for len(l.entries) > l.lim.MaxKeys && l.idle.back != nil {
		l.removeLocked(l.idle.back)
	}
	if l.lim.Rate == 0 {
		// Idle keys were kept only for their buckets.
		for l.idle.back != nil {
			l.removeLocked(l.idle.back)
		}
	}
}

// Len returns the number of keys tracked, busy and idle.
func (l *KeyLimiter[K]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Admit decides whether a new connection from key may proceed at now. It
// checks the connection cap first (a refusal there spends no rate token),
// then the rate. On success the caller must call release once when the
// connection ends; further calls do nothing, and release is safe from any
// goroutine. On failure release is nil and err is ErrTooManyConns,
// ErrRateLimited or ErrAddrTableFull.
func (l *KeyLimiter[K]) Admit(key K, now time.Time) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.lim
	l.sweepLocked(now)

	e := l.entries[key]
	if e == nil {
		if lim.MaxConns == 0 && lim.Rate == 0 {
			// Nothing to enforce and, with Rate 0, nothing to remember.
			return func() {}, nil
		}
		for len(l.entries) >= lim.MaxKeys {
			if l.idle.back == nil {
				return nil, ErrAddrTableFull
			}
			l.removeLocked(l.idle.back)
		}
		e = &addrEntry[K]{key: key, gen: l.gen}
		if lim.Rate > 0 {
			e.bucket = rate.NewLimiter(lim.Rate, lim.Burst)
		}
		l.entries[key] = e
		l.idle.pushFront(e)
	} else {
		if e.idle {
			l.idle.moveToFront(e)
		}
		if e.gen != l.gen {
			e.gen = l.gen
			switch {
			case lim.Rate == 0:
				e.bucket = nil
			case e.bucket == nil:
				e.bucket = rate.NewLimiter(lim.Rate, lim.Burst)
			default:
				e.bucket.SetLimitAt(now, lim.Rate)
				e.bucket.SetBurstAt(now, lim.Burst)
			}
		}
	}

	if lim.MaxConns > 0 && e.conns >= lim.MaxConns {
		return nil, ErrTooManyConns
	}
	if e.bucket != nil && !e.bucket.AllowN(now, 1) {
		return nil, ErrRateLimited
	}
	l.idle.remove(e) // busy now
	e.conns++
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			l.release(e)
		}
	}, nil
}

func (l *KeyLimiter[K]) release(e *addrEntry[K]) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.conns--
	if e.conns > 0 {
		return
	}
	if e.bucket == nil || len(l.entries) > l.lim.MaxKeys {
		// Nothing to remember, or the table is over a bound lowered by SetLimits.
		l.removeLocked(e)
		return
	}
	l.idle.pushFront(e)
}

// sweepLocked drops up to two idle keys from the LRU tail whose buckets have
// refilled: they would be created afresh in the same state.
func (l *KeyLimiter[K]) sweepLocked(now time.Time) {
	for range 2 {
		e := l.idle.back
		if e == nil {
			return
		}
		if e.bucket != nil && e.bucket.TokensAt(now) < float64(e.bucket.Burst()) {
			return
		}
		l.removeLocked(e)
	}
}

// removeLocked forgets an idle entry.
func (l *KeyLimiter[K]) removeLocked(e *addrEntry[K]) {
	l.idle.remove(e)
	delete(l.entries, e.key)
}
