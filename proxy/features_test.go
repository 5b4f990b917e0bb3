package proxy

import "testing"

func TestRewriteFeatures(t *testing.T) {
	const mechs = "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms>"
	tests := []struct {
		name, in, want string
		plus           bool
	}{
		{"self-closing", "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>" + mechs + "</stream:features>",
			"<stream:features>" + mechs + "</stream:features>", false},
		{"required", "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>" + mechs + "</stream:features>",
			"<stream:features>" + mechs + "</stream:features>", false},
		{"none", "<stream:features>" + mechs + "</stream:features>", "<stream:features>" + mechs + "</stream:features>", false},
		{"plus is reported, not removed", "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1-PLUS</mechanism></mechanisms></stream:features>",
			"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1-PLUS</mechanism></mechanisms></stream:features>", true},
		{"not a prefix match", "<stream:features><starttlsx/></stream:features>", "<stream:features><starttlsx/></stream:features>", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := []byte("HDR" + tt.in + "TAIL")
			out, plus := rewriteFeatures(b, 3, 3+len(tt.in))
			if string(out) != "HDR"+tt.want+"TAIL" || plus != tt.plus {
				t.Fatalf("got %q, %v\nwant %q, %v", out, plus, "HDR"+tt.want+"TAIL", tt.plus)
			}
		})
	}
}
