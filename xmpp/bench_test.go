package xmpp

import (
	"fmt"
	"strings"
	"testing"
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
