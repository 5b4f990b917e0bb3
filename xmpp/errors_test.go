package xmpp

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestConditions(t *testing.T) {
	if len(Conditions()) != 25 {
		t.Fatalf("%d conditions, RFC 6120 defines 25", len(Conditions()))
	}
	sentinels := []StreamError{
		ErrBadFormat, ErrBadNamespacePrefix, ErrConflict, ErrConnectionTimeout, ErrHostGone,
		ErrHostUnknown, ErrImproperAddressing, ErrInternalServerError, ErrInvalidFrom,
		ErrInvalidNamespace, ErrInvalidXML, ErrNotAuthorized, ErrNotWellFormed, ErrPolicyViolation,
		ErrRemoteConnectionFailed, ErrReset, ErrResourceConstraint, ErrRestrictedXML,
		ErrSeeOtherHost, ErrSystemShutdown, ErrUndefinedCondition, ErrUnsupportedEncoding,
		ErrUnsupportedFeature, ErrUnsupportedStanzaType, ErrUnsupportedVersion,
	}
	for i, c := range Conditions() {
		t.Run(string(c), func(t *testing.T) {
			if got, ok := ParseCondition(string(c)); !ok || got != c {
				t.Errorf("ParseCondition(%q) = %q, %v", c, got, ok)
			}
			if sentinels[i].Condition != c {
				t.Errorf("sentinel %d is %q", i, sentinels[i].Condition)
			}
			// errors.Is through wrapping, for both error types.
			wrapped := fmt.Errorf("relay: %w", StreamError{Condition: c, Text: "why"})
			if !errors.Is(wrapped, sentinels[i]) {
				t.Errorf("errors.Is(wrapped StreamError, Err%s) is false", c)
			}
			syn := fmt.Errorf("read: %w", &SyntaxError{Condition: c, Msg: "x"})
			if !errors.Is(syn, sentinels[i]) {
				t.Errorf("errors.Is(wrapped SyntaxError, Err%s) is false", c)
			}
			if got, ok := ConditionOf(syn); !ok || got != c {
				t.Errorf("ConditionOf = %q, %v", got, ok)
			}
			other := sentinels[(i+1)%len(sentinels)]
			if errors.Is(wrapped, other) || errors.Is(syn, other) {
				t.Errorf("%s matches %s", c, other.Condition)
			}
			// The pre-rendered frame is what the general path renders.
			frame := string(StreamError{Condition: c}.AppendTo(nil))
			want := "<stream:error><" + string(c) + " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"
			if c != SeeOtherHost && frame != want {
				t.Errorf("frame %s", frame)
			}
			checkErrorFrame(t, StreamError{Condition: c, Text: "a < b & 'c'", SeeOtherHost: "h"}.AppendTo(nil), c)
		})
	}
	for _, s := range []string{"", "Policy-Violation", "bogus", "stream:error"} {
		if _, ok := ParseCondition(s); ok {
			t.Errorf("ParseCondition(%q) accepted", s)
		}
	}
	if _, ok := ConditionOf(errors.New("plain")); ok {
		t.Error("ConditionOf(plain error) reported a condition")
	}
	if c, ok := ConditionOf(fmt.Errorf("x: %w", &StreamError{Condition: Conflict})); !ok || c != Conflict {
		t.Errorf("ConditionOf(*StreamError) = %q, %v", c, ok)
	}
	if !errors.Is(ErrConflict, &StreamError{Condition: Conflict}) {
		t.Error("errors.Is with a *StreamError target is false")
	}
}

// checkErrorFrame parses an error frame inside a stream and checks its
// condition.
func checkErrorFrame(t *testing.T, frame []byte, c Condition) {
	t.Helper()
	doc := "<stream:stream xmlns='jabber:client' xmlns:stream='" + StreamsNS + "'>" + string(frame)
	var got struct {
		XMLName xml.Name
		Error   struct {
			Inner []struct {
				XMLName xml.Name
				Body    string `xml:",chardata"`
			} `xml:",any"`
		} `xml:"http://etherx.jabber.org/streams error"`
	}
	if err := xml.Unmarshal([]byte(doc), &got); err != nil {
		t.Fatalf("frame %s does not parse: %v", frame, err)
	}
	if len(got.Error.Inner) == 0 || got.Error.Inner[0].XMLName != (xml.Name{Space: ErrorsNS, Local: string(c)}) {
		t.Fatalf("frame %s: condition %+v", frame, got.Error.Inner)
	}
	if !strings.HasSuffix(string(frame), "</stream:error></stream:stream>") {
		t.Errorf("frame %s does not close the stream", frame)
	}
}

func TestStreamErrorAppendTo(t *testing.T) {
	tests := []struct {
		err  StreamError
		want string
	}{
		{ErrResourceConstraint, "<stream:error><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"},
		{StreamError{Condition: PolicyViolation, Text: "stanza > 64 KiB & 'more'"},
			"<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>stanza &gt; 64 KiB &amp; &apos;more&apos;</text></stream:error></stream:stream>"},
		{StreamError{Condition: SeeOtherHost, SeeOtherHost: "[2001:db8::1]:5222"},
			"<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>[2001:db8::1]:5222</see-other-host></stream:error></stream:stream>"},
		{StreamError{Condition: "made-up"}, "<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"},
		{StreamError{Condition: InternalServerError, Text: "bad\x00byte \xff"},
			"<stream:error><internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>bad\uFFFDbyte \uFFFD</text></stream:error></stream:stream>"},
	}
	for _, tc := range tests {
		if got := string(tc.err.AppendTo(nil)); got != tc.want {
			t.Errorf("%v:\n got %s\nwant %s", tc.err, got, tc.want)
		}
	}
	buf := make([]byte, 0, 256)
	if a := testing.AllocsPerRun(100, func() { buf = ErrSystemShutdown.AppendTo(buf[:0]) }); a != 0 {
		t.Errorf("AppendTo without text: %v allocations", a)
	}
}

func TestErrorStrings(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{ErrHostUnknown, "xmpp: stream error host-unknown"},
		{StreamError{Condition: SeeOtherHost, SeeOtherHost: "b:5222", Text: "full"}, "xmpp: stream error see-other-host b:5222: full"},
		{&SyntaxError{Condition: RestrictedXML, Offset: 42, Msg: "comment not allowed"}, "xmpp: restricted-xml at byte 42: comment not allowed"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	se := (&SyntaxError{Condition: NotWellFormed, Msg: "m"}).StreamError()
	if se != (StreamError{Condition: NotWellFormed, Text: "m"}) {
		t.Errorf("StreamError() = %+v", se)
	}
}
