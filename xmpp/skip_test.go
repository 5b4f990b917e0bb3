package xmpp

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// refSkip is skip as it was before it tested eight bytes at a time: the
// table lookup of every byte, which defines what skip must return.
func refSkip(p []byte, i int, tab *[256]uint8, stop uint8) int {
	for ; i+8 <= len(p); i += 8 {
		b := p[i : i+8 : i+8]
		if tab[b[0]]&stop != 0 {
			return i
		}
		if tab[b[1]]&stop != 0 {
			return i + 1
		}
		if tab[b[2]]&stop != 0 {
			return i + 2
		}
		if tab[b[3]]&stop != 0 {
			return i + 3
		}
		if tab[b[4]]&stop != 0 {
			return i + 4
		}
		if tab[b[5]]&stop != 0 {
			return i + 5
		}
		if tab[b[6]]&stop != 0 {
			return i + 6
		}
		if tab[b[7]]&stop != 0 {
			return i + 7
		}
	}
	for i < len(p) && tab[p[i]]&stop == 0 {
		i++
	}
	return i
}

// skipSets are the stop sets skip is checked with: those of the fast path,
// and that of CDATA sections, which has a single printable stop byte (the
// other entries of eq stay zero).
var skipSets = []struct {
	name string
	tab  *[256]uint8
	stop uint8
	s    stopSet
}{
	{"text", &ctab, cStopText, textStops},
	{"apos", &qtab, qStopApos, aposStops},
	{"quot", &qtab, qStopQuot, quotStops},
	{"cdata", &ctab, cStopCDATA, newStopSet(&ctab, cStopCDATA)},
}

// skipModes are the ways skip can scan a long run on this machine: the
// word loop alone, and with the wide scan (skipStops32) where the CPU has
// one.
var skipModes = func() []bool {
	if wideSkip {
		return []bool{false, true}
	}
	return []bool{false}
}()

// checkSkip compares skip with refSkip on p from i, for every stop set and
// every mode.
func checkSkip(t *testing.T, p []byte, i int) {
	t.Helper()
	defer func(w bool) { wideSkip = w }(wideSkip)
	for _, wide := range skipModes {
		wideSkip = wide
		for _, ss := range skipSets {
			got, want := skip(p, i, &ss.s), refSkip(p, i, ss.tab, ss.stop)
			if got != want {
				t.Fatalf("%s (wide %v): skip(%q, %d) = %d, want %d", ss.name, wide, p, i, got, want)
			}
		}
	}
}

// overrun returns a copy of p followed, within its capacity, by bytes that
// make skip return more than len(p) if it reads a word beyond len(p): a line
// feed, which character data passes where a word test flags it, then
// non-ASCII bytes, which every set stops on. (A read beyond the end
// returning len(p) anyway is caught by nothing: checkptr does not check
// conversions to *[8]byte.)
func overrun(p []byte) []byte {
	q := append(make([]byte, 0, len(p)+8), p...)
	return append(q, "\n\xff\xff\xff\xff\xff\xff\xff"...)[:len(p)]
}

// TestSkipStopSets checks that each stop set lists exactly the printable
// ASCII bytes its table stops on and the controls it does not, and that a
// table with too many printable stop bytes is refused rather than half
// tested.
func TestSkipStopSets(t *testing.T) {
	for _, ss := range skipSets {
		for c := 0; c < 0x80; c++ {
			stops := ss.tab[c]&ss.stop != 0
			if c < 0x20 {
				if pass := ss.s.pass>>c&1 != 0; pass == stops {
					t.Errorf("%s: %q stops %v, passes %v", ss.name, rune(c), stops, pass)
				}
				continue
			}
			listed := false
			for _, e := range ss.s.eq {
				listed = listed || e == swarLo*uint64(c)
			}
			if stops != listed {
				t.Errorf("%s: %q stops %v, listed %v", ss.name, rune(c), stops, listed)
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("newStopSet accepted the four printable stop bytes of cStopAttr")
		}
	}()
	newStopSet(&ctab, cStopAttr)
}

// TestSkipWide puts every byte value at every position of a run long
// enough for the wide scan's 64-byte steps, its 32-byte tail and the word
// loop after it, from starts 0 to 8, and two stop bytes at the borders of
// its steps: the scan must find the first, in either half of a step.
func TestSkipWide(t *testing.T) {
	if !wideSkip {
		t.Skip("no wide scan on this machine")
	}
	p := overrun(make([]byte, 8+64+32+7))
	fill := func() {
		for k := range p {
			p[k] = 'a'
		}
	}
	for j := range p {
		for c := 0; c < 256; c++ {
			fill()
			p[j] = byte(c)
			for i := range 9 {
				checkSkip(t, p, i)
			}
		}
	}
	for _, j := range []int{8, 39, 40, 71, 72, 103} {
		for _, k := range []int{j + 1, j + 31, j + 32, j + 33} {
			if k >= len(p) {
				continue
			}
			for _, c := range []byte{'<', '\n', 0x80, 0x1f} {
				fill()
				p[j], p[k] = c, '&'
				checkSkip(t, p, 0)
				p[j], p[k] = 'a', c
				checkSkip(t, p, 0)
			}
		}
	}
}

// TestSkipBytes puts every byte value at every position of runs of a
// filler that stops nothing or is next to a boundary of the word test
// (space after a control, 0x7F before non-ASCII), from every start modulo
// 8; then every pair of byte values side by side, in the first word that
// skip tests whole and across the border of the next: borrows between
// neighbouring bytes are where a word test goes wrong.
func TestSkipBytes(t *testing.T) {
	fillers := []byte("a \x7f!")
	if testing.Short() {
		fillers = fillers[:1]
	}
	p := overrun(make([]byte, 40))
	check := func(i int) { checkSkip(t, p, i) }
	for _, f := range fillers {
		for j := range p {
			for c := 0; c < 256; c++ {
				for k := range p {
					p[k] = f
				}
				p[j] = byte(c)
				for i := range 8 {
					check(i)
				}
			}
		}
		if f != fillers[0] {
			// Pairs are their own neighbours: one filler will do.
			continue
		}
		for _, j := range []int{8, 14, 15, 20} {
			for c := 0; c < 256; c++ {
				for d := 0; d < 256; d++ {
					for k := range p {
						p[k] = f
					}
					p[j], p[j+1] = byte(c), byte(d)
					check(0)
				}
			}
		}
	}
}

// FuzzSkip compares skip with refSkip for every stop set, from a fuzzed
// start and from starts spread between it and the end.
func FuzzSkip(f *testing.F) {
	for _, s := range benchStanzas() {
		f.Add(s.data[:min(len(s.data), 1000)], uint16(0))
	}
	for _, s := range bodyStanzas(1) {
		f.Add(s.data[:1000], uint16(0))
		f.Add(s.data[len(s.data)-500:], uint16(101))
	}
	f.Add([]byte("ab\tc\nd\re ]]> 'x' \"y\" &amp; \x00\x1f\x20\x7f\x80\xff"), uint16(0))
	f.Add([]byte("\x1f\x20\x20\x20\x20\x20\x20\x20\x1f\x20"), uint16(1))
	f.Add([]byte("abcdefg<abcdefgh&abcdefgh]"), uint16(3))
	f.Add([]byte("\t\t\t\t\t\t\t\t\n\n\n\n\n\n\n\n\r\r\r\r\r\r\r\r'\""), uint16(2))
	f.Add(bytes.Repeat([]byte("Ça va? 日本語 🌹 "), 5), uint16(7))
	f.Fuzz(func(t *testing.T, data []byte, start uint16) {
		p := overrun(data)
		for i := int(start) % (len(p) + 1); i <= len(p); i += 1 + i/4 {
			checkSkip(t, p, i)
		}
	})
}

// TestBenchInputs checks that the long and varied stanzas of the benchmarks
// are what they claim: elements that the tokenizer accepts, the same whole
// (the fast path) as byte by byte (the state machine alone), and that
// encoding/xml parses.
func TestBenchInputs(t *testing.T) {
	var elems []string
	for _, s := range bodyStanzas(2) {
		for _, e := range strings.SplitAfter(string(s.data), "</message>") {
			if e != "" {
				elems = append(elems, e)
			}
		}
	}
	for _, e := range strings.Split(string(variedStanzas(300)), "\n") {
		if e != "" {
			elems = append(elems, e)
		}
	}
	for _, e := range elems {
		in := []byte(hdr + e)
		units, err := tokenize(t, NewTokenizer(0), in, whole)
		units2, err2 := tokenize(t, NewTokenizer(0), in, byteByByte)
		if err != nil || kinds(units) != "header element" || units[1].data != e {
			t.Fatalf("%q: %v %v", e, units, err)
		}
		if fmt.Sprint(units) != fmt.Sprint(units2) || err2 != nil {
			t.Fatalf("%q: whole and byte by byte differ: %v %v", e, units2, err2)
		}
		if err := xmlParse(e); err != nil {
			t.Fatalf("encoding/xml rejects %q: %v", e, err)
		}
	}
}

// BenchmarkSkip compares skip with refSkip in character data, run by run
// as the fast path calls it (each start depends on the previous result):
// on the messages of bodyStanzas, long runs, and on the stanzas of
// benchStanzas, where runs are short.
func BenchmarkSkip(b *testing.B) {
	inputs := append(bodyStanzas(32), benchStanzas()...)
	impls := []struct {
		name string
		wide bool // wideSkip while it runs
		skip func(p []byte, i int, s *stopSet) int
	}{
		{"swar", false, skip},
		{"ref", false, func(p []byte, i int, _ *stopSet) int { return refSkip(p, i, &ctab, cStopText) }},
	}
	if wideSkip {
		impls = append(impls, struct {
			name string
			wide bool
			skip func(p []byte, i int, s *stopSet) int
		}{"wide", true, skip})
	}
	defer func(w bool) { wideSkip = w }(wideSkip)
	for _, in := range inputs {
		for _, impl := range impls {
			wideSkip = impl.wide
			b.Run(in.name+"/"+impl.name, func(b *testing.B) {
				b.SetBytes(int64(len(in.data)))
				for b.Loop() {
					for i := 0; i < len(in.data); i++ {
						i = impl.skip(in.data, i, &textStops)
					}
				}
			})
		}
	}
}
