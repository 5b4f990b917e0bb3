package xmpp

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// FuzzFastPath checks that the fast path, which scans whole chunks, agrees
// with the byte state machine, which alone scans input fed byte by byte.
func FuzzFastPath(f *testing.F) {
	for _, tc := range tokCases {
		f.Add([]byte(tc.in), uint16(0))
	}
	f.Add([]byte(clientStream), uint16(1))
	f.Add([]byte(serverStream), uint16(2))
	for _, s := range benchStanzas()[:2] {
		f.Add(append([]byte(hdr), s.data...), uint16(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, lim uint16) {
		newTk := func() *Tokenizer {
			tk := NewTokenizer(64 + int(lim%1024))
			tk.MaxHeader = 300
			tk.MaxDepth = 1 + int(lim>>12)
			return tk
		}
		units, err := tokenize(t, newTk(), data, whole)
		units2, err2 := tokenize(t, newTk(), data, byteByByte)
		if fmt.Sprint(units) != fmt.Sprint(units2) || errString(err) != errString(err2) {
			t.Fatalf("fast and slow paths differ:\n%v %s\n%v %s", units, errString(err), units2, errString(err2))
		}
	})
}

// TestFastPathMutations feeds generated and benchmark stanzas, with a few
// random bytes changed, inserted or removed, whole (mostly the fast path)
// and byte by byte (only the state machine): the results must agree.
func TestFastPathMutations(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 5))
	alphabet := []byte("<>/='\"&;:#x]!?[- \t\nab9\x00\x1f\x7f\x80\xc3\xa9\xe6\x97\xa5\xf0\xff")
	var stanzas []string
	for _, s := range benchStanzas() {
		stanzas = append(stanzas, string(s.data))
	}
	n := 3000
	if testing.Short() {
		n = 300
	}
	for i := 0; i < n; i++ {
		var b strings.Builder
		if i%4 == 0 {
			s := stanzas[r.IntN(len(stanzas))]
			if len(s) > 2000 {
				s = s[:200+r.IntN(1800)]
			}
			b.WriteString(s)
		} else {
			genStanza(r, &b, 4)
		}
		in := []byte(hdr + b.String() + " " + b.String() + "</stream:stream>")
		for k := r.IntN(4); k >= 0; k-- {
			at := len(hdr) + r.IntN(len(in)-len(hdr))
			c := alphabet[r.IntN(len(alphabet))]
			switch r.IntN(3) {
			case 0:
				in[at] = c
			case 1:
				in = append(in[:at], append([]byte{c}, in[at:]...)...)
			default:
				in = append(in[:at], in[at+1:]...)
			}
		}
		for _, lim := range []int{0, 64 + r.IntN(400)} {
			newTk := func() *Tokenizer {
				tk := NewTokenizer(lim)
				tk.MaxDepth = 1 + r.IntN(6)
				return tk
			}
			depth := newTk().MaxDepth
			mk := func() *Tokenizer { tk := newTk(); tk.MaxDepth = depth; return tk }
			units, err := tokenize(t, mk(), in, whole)
			units2, err2 := tokenize(t, mk(), in, byteByByte)
			if fmt.Sprint(units) != fmt.Sprint(units2) || errString(err) != errString(err2) {
				t.Fatalf("%q (maxUnit %d, depth %d):\nwhole: %v %s\nbytes: %v %s", in, lim, depth, units, errString(err), units2, errString(err2))
			}
		}
	}
}
