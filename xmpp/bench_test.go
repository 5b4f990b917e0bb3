package xmpp

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

type benchStanza struct {
	name string
	data []byte
}

// benchStanzas returns a realistic mix: a small chat message (~200 B), a
// presence with entity capabilities and a vCard hash (~400 B), and a large
// roster result (~20 KiB).
func benchStanzas() []benchStanza {
	msg := "<message from='juliet@example.com/balcony' to='romeo@example.net' type='chat' id='ktx72v49'>" +
		"<body>Art thou not Romeo, and a Montague? &lt;3 ça va</body>" +
		"<active xmlns='http://jabber.org/protocol/chatstates'/></message>"
	presence := "<presence from='juliet@example.com/balcony' id='p1' xml:lang='en'>" +
		"<show>away</show><status>Wherefore art thou, Romeo? Be back in 5 minutes</status><priority>5</priority>" +
		"<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='QHnPpXuZ0Z2CRN4yTP7a/8QXEFE='/>" +
		"<x xmlns='vcard-temp:x:update'><photo>01b87fcd030b72895ff8e88db57ec525450f000d</photo></x>" +
		"<idle xmlns='urn:xmpp:idle:1' since='2024-01-01T12:00:00Z'/></presence>"
	var roster strings.Builder
	roster.WriteString("<iq type='result' id='roster_1' to='juliet@example.com/balcony'><query xmlns='jabber:iq:roster' ver='ver14'>")
	for i := 0; roster.Len() < 20<<10; i++ {
		fmt.Fprintf(&roster, "<item jid='contact%d@example.net' name='Contact Nummer %d &amp; Co' subscription='both'><group>Friends</group><group>Work</group></item>", i, i)
	}
	roster.WriteString("</query></iq>")
	return []benchStanza{
		{"message", []byte(msg)},
		{"presence", []byte(presence)},
		{"roster", []byte(roster.String())},
	}
}

// bodyStanzas returns n different 16 KiB chat messages of each kind, the
// relay workload where scanning character data dominates: plain ASCII text
// on one line (as in bench/throughput_test.go), ASCII text in lines of 40
// to 100 bytes (a pasted log or letter), and text mixing Latin, Cyrillic,
// CJK and emoji. The words are drawn at random so that a CPU's branch
// predictor cannot learn where lines and non-ASCII characters fall.
func bodyStanzas(n int) []benchStanza {
	const size = 16 << 10
	r := rand.New(rand.NewPCG(3, 4))
	ascii := strings.Fields("It is the east, and Juliet is the sun. Arise, fair sun, and kill the envious moon, " +
		"who is already sick and pale with grief. 2024-01-01T12:00:00Z relay ok: 42 stanzas (3 KiB) in 1.5 ms; " +
		"see https://example.net/path?q=1#frag for details.")
	mixed := append(strings.Fields("Ça va? Très bien, merci. Grüße aus Köln! Привет, как дела? "+
		"日本語のテキストです。 Good night 🌹 😀 über naïve façade Straße Москва 中文 한국어"), ascii...)
	stanza := func(words []string, lines bool) []byte {
		const head, tail = "<message from='juliet@example.com/balcony' to='romeo@example.net' type='chat' id='big1'><body>", "</body></message>"
		var b strings.Builder
		b.WriteString(head)
		line, width := 0, 40+r.IntN(61)
		for b.Len() < size-len(tail) {
			w := words[r.IntN(len(words))]
			if line += len(w) + 1; lines && line > width {
				b.WriteByte('\n')
				line, width = len(w)+1, 40+r.IntN(61)
			} else if b.Len() > len(head) {
				b.WriteByte(' ')
			}
			b.WriteString(w)
		}
		// Cut to size, blanking a character cut in two.
		body := []byte(b.String()[:size-len(tail)])
		for k := len(body) - 1; !utf8.Valid(body); k-- {
			body[k] = ' '
		}
		return append(body, tail...)
	}
	kinds := []struct {
		name  string
		words []string
		lines bool
	}{{"ascii", ascii, false}, {"lines", ascii, true}, {"utf8", mixed, false}}
	var st []benchStanza
	for _, k := range kinds {
		var data []byte
		for range n {
			data = append(data, stanza(k.words, k.lines)...)
		}
		st = append(st, benchStanza{k.name, data})
	}
	return st
}

// variedStanzas returns n chat-like stanzas that all differ: messages with
// bodies of 1 to 60 words (now and then a reference or a non-ASCII word),
// presences with a status, and small roster pushes, with random ids,
// JIDs and caps hashes. Unlike the repeated stanzas of the mix, whose run
// lengths a CPU's branch predictor learns by heart over a benchmark's
// iterations, they make every run end where the predictor cannot guess,
// as in real traffic.
func variedStanzas(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	words := strings.Fields("the a to and of I you it in is that for on with be this have are not " +
		"but at we so can just what will do if me my about was there your like get know " +
		"Romeo Juliet balcony tonight meeting tomorrow release server upload https://example.net/x?y=1 " +
		"ok, yes. no! really? :) 42 2024-01-01 10:30")
	odd := []string{"&amp;", "&lt;3", "&quot;hi&quot;", "café", "Grüße", "привет", "日本語", "🌹"}
	text := func(most int) string {
		var b strings.Builder
		for k := 1 + r.IntN(most); k > 0; k-- {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			if r.IntN(30) == 0 {
				b.WriteString(odd[r.IntN(len(odd))])
			} else {
				b.WriteString(words[r.IntN(len(words))])
			}
		}
		return b.String()
	}
	var b strings.Builder
	for i := 0; i < n; i++ {
		from := fmt.Sprintf("user%d@example.com/%s", r.IntN(5000), []string{"balcony", "phone", "gajim.x7Q2", "Conversations.aB9f"}[r.IntN(4)])
		to := fmt.Sprintf("contact%d@example.net", r.IntN(5000))
		switch k := r.IntN(10); {
		case k < 6:
			fmt.Fprintf(&b, "<message from='%s' to='%s' type='chat' id='%x'><body>%s</body>"+
				"<active xmlns='http://jabber.org/protocol/chatstates'/></message>", from, to, r.Uint64(), text(60))
		case k < 9:
			fmt.Fprintf(&b, "<presence from='%s' id='p%d'><show>%s</show><status>%s</status>"+
				"<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://conversations.im' ver='%x='/></presence>",
				from, r.IntN(1e6), []string{"away", "chat", "dnd", "xa"}[r.IntN(4)], text(12), r.Uint64())
		default:
			fmt.Fprintf(&b, "<iq type='set' id='push%d' to='%s'><query xmlns='jabber:iq:roster' ver='ver%d'>"+
				"<item jid='%s' name='%s' subscription='both'><group>%s</group></item></query></iq>",
				r.IntN(1e6), from, r.IntN(1e4), to, text(3), text(2))
		}
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// benchFeed feeds one stanza to a tokenizer inside a stream.
func benchFeed(b *testing.B, tk *Tokenizer, p []byte) {
	for len(p) > 0 {
		n, _, err := tk.Next(p)
		if err != nil {
			b.Fatal(err)
		}
		p = p[n:]
	}
}

func newBenchTokenizer(b *testing.B) *Tokenizer {
	tk := NewTokenizer(0)
	if _, _, err := tk.Next([]byte(hdr)); err != nil {
		b.Fatal(err)
	}
	return tk
}

// BenchmarkTokenizer measures a mix of stanzas in the proportions of busy
// chat traffic: 20 messages and 10 presences for every roster result.
func BenchmarkTokenizer(b *testing.B) {
	st := benchStanzas()
	var mix []byte
	for i := 0; i < 20; i++ {
		mix = append(mix, st[0].data...)
		if i%2 == 0 {
			mix = append(mix, st[1].data...)
		}
		mix = append(mix, '\n')
	}
	mix = append(mix, st[2].data...)
	for _, chunk := range []int{0, 1500} {
		name := "whole"
		if chunk > 0 {
			name = fmt.Sprintf("chunk%d", chunk)
		}
		b.Run(name, func(b *testing.B) {
			tk := newBenchTokenizer(b)
			b.SetBytes(int64(len(mix)))
			b.ReportAllocs()
			for b.Loop() {
				p := mix
				for len(p) > 0 {
					c := p
					if chunk > 0 && len(c) > chunk {
						c = c[:chunk]
					}
					n, _, err := tk.Next(c)
					if err != nil {
						b.Fatal(err)
					}
					p = p[n:]
				}
			}
		})
	}
}

// BenchmarkTokenizerVaried measures 4,000 stanzas of variedStanzas, about
// 1.2 MB, in one go.
func BenchmarkTokenizerVaried(b *testing.B) {
	in := variedStanzas(4000)
	tk := newBenchTokenizer(b)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		benchFeed(b, tk, in)
	}
}

// BenchmarkTokenizerBody measures 16 KiB chat messages, 32 different ones
// of each kind of bodyStanzas.
func BenchmarkTokenizerBody(b *testing.B) {
	for _, s := range bodyStanzas(32) {
		b.Run(s.name+"-16KiB", func(b *testing.B) {
			tk := newBenchTokenizer(b)
			b.SetBytes(int64(len(s.data)))
			b.ReportAllocs()
			for b.Loop() {
				benchFeed(b, tk, s.data)
			}
		})
	}
}

// BenchmarkTokenizerStanza measures each stanza of the mix alone.
func BenchmarkTokenizerStanza(b *testing.B) {
	for _, s := range benchStanzas() {
		b.Run(fmt.Sprintf("%s-%dB", s.name, len(s.data)), func(b *testing.B) {
			tk := newBenchTokenizer(b)
			b.SetBytes(int64(len(s.data)))
			b.ReportAllocs()
			for b.Loop() {
				benchFeed(b, tk, s.data)
			}
		})
	}
}

func BenchmarkStreamErrorAppendTo(b *testing.B) {
	buf := make([]byte, 0, 512)
	b.Run("frame", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = ErrPolicyViolation.AppendTo(buf[:0])
		}
	})
	b.Run("text", func(b *testing.B) {
		e := StreamError{Condition: PolicyViolation, Text: "stanza larger than 262144 bytes"}
		b.ReportAllocs()
		for b.Loop() {
			buf = e.AppendTo(buf[:0])
		}
	})
}

func BenchmarkParseHeader(b *testing.B) {
	h := []byte("<?xml version='1.0'?>" + hdr)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHeader(h); err != nil {
			b.Fatal(err)
		}
	}
}
