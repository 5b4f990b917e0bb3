package fedtest

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer is the namespace's name server: authoritative for the
// caller's names only, UDP only (Prosody's net.dns and Erlang's inet_res
// ask over UDP, and every answer fits in one datagram).
type dnsServer struct {
	pc    net.PacketConn
	hosts map[string]netip.Addr // lower case, no trailing dot
	done  chan struct{}

	mu  sync.Mutex
	log []string
}

// dnsTTL is short: a test may restart a server, never re-address it, but a
// resolver's cache should not outlive a test by much.
const dnsTTL = 5

// maxLoggedQueries bounds the query log a long test keeps.
const maxLoggedQueries = 1000

func serveDNS(pc net.PacketConn, hosts map[string]netip.Addr) *dnsServer {
	s := &dnsServer{pc: pc, hosts: hosts, done: make(chan struct{})}
	go s.serve()
	return s
}

func (s *dnsServer) serve() {
	defer close(s.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // a transient error on a UDP socket: keep serving
		}
		if resp, ok := s.answer(buf[:n]); ok {
			s.pc.WriteTo(resp, from)
		}
	}
}

// answer builds the response to one query: A records for a known name,
// NOERROR without records for its other types, NXDOMAIN for any other
// name. A datagram that is not a query gets no answer.
func (s *dnsServer) answer(req []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(req)
	if err != nil || h.Response {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	s.note(time.Now().Format("15:04:05.000") + " " + q.Name.String() + " " + q.Type.String())

	name := strings.TrimSuffix(strings.ToLower(q.Name.String()), ".")
	addr, known := s.hosts[name]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, false
	}
	if err := b.Question(q); err != nil {
		return nil, false
	}
	if err := b.StartAnswers(); err != nil {
		return nil, false
	}
	if known && q.Type == dnsmessage.TypeA && q.Class == dnsmessage.ClassINET {
		rr := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: dnsTTL}
		if err := b.AResource(rr, dnsmessage.AResource{A: addr.As4()}); err != nil {
			return nil, false
		}
	}
	resp, err := b.Finish()
	if err != nil {
		return nil, false
	}
	return resp, true
}

func (s *dnsServer) note(q string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.log) < maxLoggedQueries {
		s.log = append(s.log, q)
	}
}

func (s *dnsServer) queries() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.log...)
}

// close stops the server and waits for its goroutine.
func (s *dnsServer) close() {
	s.pc.Close()
	<-s.done
}
