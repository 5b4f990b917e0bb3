package fedtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/guard-xmpp/guard/internal/xmppclient"
)

// Message is one message a User received: a body, or a bounce (a message
// of type error, RFC 6120 section 8.3) with Err set.
type Message struct {
	From string
	Body string
	Err  error
}

// User is a logged-in client session (internal/xmppclient, plaintext c2s)
// whose socket lives in the namespace. One goroutine reads it from login
// to Close and queues what arrives, so that a wait that times out leaves
// the session usable (an xmppclient read that times out does not).
type User struct {
	*xmppclient.Client

	msgs   chan Message
	cancel context.CancelFunc
	done   chan struct{} // closed when the reader has returned

	mu      sync.Mutex
	readErr error
	closed  bool
}

// msgQueue bounds the messages a User holds unread; the reader blocks
// beyond it (a test reads what it sends).
const msgQueue = 256

func login(ctx context.Context, ns *Netns, addr, domain, user, password string) (*User, error) {
	conn, err := ns.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c, err := xmppclient.New(ctx, conn, domain, user, password)
	if err != nil {
		conn.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	u := &User{Client: c, msgs: make(chan Message, msgQueue), cancel: cancel, done: make(chan struct{})}
	go u.read(rctx)
	return u, nil
}

func (u *User) read(ctx context.Context) {
	defer close(u.done)
	for i := 0; i < 1_000_000; i++ {
		from, body, err := u.ReadMessage(ctx)
		if err != nil && from == "" {
			// The stream ended (stream error, EOF, Close): the session is over.
			u.mu.Lock()
			u.readErr = err
			u.mu.Unlock()
			return
		}
		// A bounce has a from and an error; the stream goes on.
		select {
		case u.msgs <- Message{From: from, Body: body, Err: err}:
		case <-ctx.Done():
			return
		}
	}
}

// Await waits until a message with body arrives, skipping others. It
// returns an error when a bounce arrives instead (the server could not
// deliver one of ours), when the session ends, or after timeout.
func (u *User) Await(body string, timeout time.Duration) (Message, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var skipped []string
	for i := 0; i < 10_000; i++ {
		select {
		case m := <-u.msgs:
			if m.Err != nil {
				return m, fmt.Errorf("%s got a bounce from %s: %w", u.JID(), m.From, m.Err)
			}
			if m.Body == body {
				return m, nil
			}
			skipped = append(skipped, fmt.Sprintf("%q from %s", m.Body, m.From))
		case <-u.done:
			// Take what arrived before the end first.
			select {
			case m := <-u.msgs:
				if m.Err == nil && m.Body == body {
					return m, nil
				}
			default:
			}
			return Message{}, fmt.Errorf("%s: session ended before %q arrived: %v", u.JID(), body, u.err())
		case <-timer.C:
			return Message{}, fmt.Errorf("%s: no %q within %v (skipped: %s)", u.JID(), body, timeout, strings.Join(skipped, ", "))
		}
	}
	return Message{}, errors.New("fedtest: too many messages skipped")
}

func (u *User) err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.readErr
}

// Close ends the session: the reader is stopped first (xmppclient's Close
// must not run during a read), then the stream is closed gracefully,
// bounded by xmppclient. Closing twice is harmless.
func (u *User) Close() {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return
	}
	u.closed = true
	u.mu.Unlock()
	u.cancel()
	<-u.done
	u.Client.Close()
}
