package proxy

import (
	"bytes"
	"strconv"
	"time"
)

// This file advertises the limits Guard enforces (XEP-0478, stream limits):
// where Guard bounds a top-level element (max_stanza_size) or silence
// (timeouts.idle) more tightly than the backend says, or the backend says
// nothing, the <limits/> of the stream features the client receives carry
// Guard's bound, so that a well-behaved client does not send what Guard
// would refuse. A tighter bound of the backend's is kept.

const streamLimitsNS = "urn:xmpp:stream-limits:0"

var (
	limitsOpen    = []byte("<limits")
	limitsEnd     = []byte("</limits>")
	featuresClose = []byte("</stream:features>")
)

// withLimits returns b with the stream features at b[start:end] carrying
// <limits/> no looser than maxBytes and, if idle > 0, idle: b itself when
// the backend's are as tight already.
func withLimits(b []byte, start, end, maxBytes int, idle time.Duration) []byte {
	f := b[start:end]
	if !bytes.HasSuffix(f, featuresClose) {
		return b // a self-closing <stream:features/>, or not features
	}
	ls, le := findLimits(f)
	mb, is := -1, -1 // the backend's; -1: none
	if ls >= 0 {
		mb = intElement(f[ls:le], "max-bytes")
		is = intElement(f[ls:le], "idle-seconds")
	}
	wantMB, wantIS := tighter(mb, maxBytes), is
	if idle > 0 {
		wantIS = tighter(is, int((idle+time.Second-1)/time.Second))
	}
	if ls >= 0 && wantMB == mb && wantIS == is {
		return b
	}
	el := append([]byte("<limits xmlns='"+streamLimitsNS+"'><max-bytes>"), strconv.Itoa(wantMB)...)
	el = append(el, "</max-bytes>"...)
	if wantIS >= 0 {
		el = append(append(append(el, "<idle-seconds>"...), strconv.Itoa(wantIS)...), "</idle-seconds>"...)
	}
	el = append(el, limitsEnd...)
	if ls < 0 {
		ls, le = len(f)-len(featuresClose), len(f)-len(featuresClose) // before </stream:features>
	}
	out := make([]byte, 0, len(b)+len(el))
	out = append(out, b[:start+ls]...)
	out = append(out, el...)
	return append(out, b[start+le:]...)
}

// tighter is the lower of the backend's bound (-1: none) and Guard's.
func tighter(backend, guard int) int {
	if backend >= 0 && backend < guard {
		return backend
	}
	return guard
}

// findLimits returns where the <limits/> element of the stream-limits
// namespace lies in the features f, or -1.
func findLimits(f []byte) (start, end int) {
	for off := 0; ; {
		i := bytes.Index(f[off:], limitsOpen)
		if i < 0 {
			return -1, -1
		}
		i += off
		gt := bytes.IndexByte(f[i:], '>')
		if gt < 0 {
			return -1, -1
		}
		tag := f[i : i+gt+1]
		if len(tag) > len(limitsOpen) && isTagEnd(tag[len(limitsOpen)]) && bytes.Contains(tag, []byte(streamLimitsNS)) {
			if tag[len(tag)-2] == '/' {
				return i, i + len(tag)
			}
			if k := bytes.Index(f[i:], limitsEnd); k >= 0 {
				return i, i + k + len(limitsEnd)
			}
			return -1, -1
		}
		off = i + len(limitsOpen)
	}
}

// intElement returns the number in <name>N</name> within el, or -1.
func intElement(el []byte, name string) int {
	open, close := []byte("<"+name+">"), []byte("</"+name+">")
	i := bytes.Index(el, open)
	if i < 0 {
		return -1
	}
	v := el[i+len(open):]
	j := bytes.Index(v, close)
	if j < 0 {
		return -1
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(v[:j])))
	if err != nil || n < 0 {
		return -1
	}
	return n
}
