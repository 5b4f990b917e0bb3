package limits_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/guard-xmpp/guard/limits"
	"golang.org/x/time/rate"
)

func ExampleGate() {
	// One backend stream at a time, one caller may wait for it.
	g := limits.NewGate(1, 1)

	first, _ := g.Acquire(context.Background())
	fmt.Println("first: admitted")

	// The second caller waits, bounded by the queue timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err := g.Acquire(ctx)
	fmt.Println("second:", err)

	// With a caller in the queue, a third is refused at once.
	queued := make(chan *limits.Ticket)
	go func() {
		t, _ := g.Acquire(context.Background())
		queued <- t
	}()
	for g.Stats().Waiting == 0 {
		time.Sleep(time.Millisecond)
	}
	_, err = g.Acquire(context.Background())
	fmt.Println("third:", errors.Is(err, limits.ErrQueueFull))

	first.Release() // the slot goes to the waiter
	first.Release() // no effect: release-once
	fourth := <-queued
	fmt.Println("waiter: admitted")
	fourth.Release()

	s := g.Stats()
	fmt.Printf("in use %d, admitted %d, queue full %d, timed out %d\n",
		s.InUse, s.Admitted, s.RejectedFull, s.RejectedTimeout)
	// Output:
	// first: admitted
	// second: context deadline exceeded
	// third: true
	// waiter: admitted
	// in use 0, admitted 2, queue full 1, timed out 1
}

func ExampleAddrLimiter() {
	l := limits.NewAddrLimiter(limits.AddrLimits{
		MaxConns: 2,                       // open connections per address
		Rate:     rate.Every(time.Second), // one new connection a second...
		Burst:    3,                       // ...after a burst of three
		MaxKeys:  100_000,
	})
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

	// Two addresses in one IPv6 /64 share their limits.
	a := limits.Key(netip.MustParseAddr("2001:db8::1"))
	b := limits.Key(netip.MustParseAddr("2001:db8::2"))
	fmt.Println(a, a == b)

	release1, err := l.Admit(a, now)
	fmt.Println("1:", err)
	release2, err := l.Admit(b, now)
	fmt.Println("2:", err)
	_, err = l.Admit(a, now)
	fmt.Println("3:", err)

	release1()
	release1() // no effect
	_, err = l.Admit(a, now)
	fmt.Println("4:", err)
	release2()
	_, err = l.Admit(a, now)
	fmt.Println("5:", err)
	_, err = l.Admit(a, now.Add(time.Second))
	fmt.Println("6:", err)
	fmt.Println("tracked:", l.Len())
	// Output:
	// 2001:db8::/64 true
	// 1: <nil>
	// 2: <nil>
	// 3: limits: too many connections from this address
	// 4: <nil>
	// 5: limits: connection rate exceeded for this address
	// 6: <nil>
	// tracked: 1
}

func ExampleShaper() {
	s := limits.NewShaper(1000, 1000) // 1000 bytes a second, bursts of 1000
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	fmt.Println(s.Delay(1000, now)) // the burst
	fmt.Println(s.Delay(250, now))  // a quarter of a second in debt
	fmt.Println(s.Delay(0, now.Add(100*time.Millisecond)))

	var unlimited *limits.Shaper = limits.NewShaper(0, 0)
	fmt.Println(unlimited.Delay(1<<20, now))
	// Output:
	// 0s
	// 250ms
	// 150ms
	// 0s
}
