// Package limits holds Guard's admission gates, rate limiters and byte-rate shapers: counters and clocks, no I/O and no XMPP.
//
// Four mechanisms live here, each safe for concurrent use unless its doc says otherwise:
//
//   - [Gate] caps the number of streams a backend pool carries at once and
//     queues the overflow in a bounded FIFO; the caller bounds the wait with a
//     context (the queue timeout).
//   - [AddrLimiter] caps concurrent connections and the rate of new
//     connections per client address ([Key] groups IPv6 addresses by /64),
//     in a table whose size is bounded by [AddrLimits.MaxKeys].
//   - [Pacer] smooths connection storms: it spaces out new backend streams to
//     a listener-wide rate, in FIFO order.
//   - [Shaper] keeps one connection's read rate under a byte rate by telling
//     the reader how long to pause; it never drops data.
//
// Time is injected: functions that decide on time take a now argument, and
// the one type that sleeps ([Pacer]) does so through an internal clock that
// tests replace. The package reads no sockets and knows nothing of XMPP; the
// proxy maps its errors to stream errors through policy.
package limits
