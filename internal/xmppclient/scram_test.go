package xmppclient

import "testing"

// The example exchange of RFC 5802 section 5.
func TestSCRAMRFC5802(t *testing.T) {
	s := newSCRAM("user", "pencil", "fyko+d2lbbFgONRv9qkxdawL")
	if got, want := s.clientFirst(), "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"; got != want {
		t.Fatalf("client-first = %q, want %q", got, want)
	}
	final, err := s.clientFinal("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
	if err != nil {
		t.Fatal(err)
	}
	if want := "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="; final != want {
		t.Fatalf("client-final = %q, want %q", final, want)
	}
	if err := s.verifyServerFinal("v=rmF9pqV8S7suAoZWja4dJRkFsKQ="); err != nil {
		t.Fatal(err)
	}
	if err := s.verifyServerFinal("v=AAAApqV8S7suAoZWja4dJRkFsKQ="); err == nil {
		t.Fatal("a wrong server signature verified")
	}
}

func TestSCRAMRejectsForeignNonce(t *testing.T) {
	s := newSCRAM("user", "pencil", "abc")
	s.clientFirst()
	if _, err := s.clientFinal("r=xyz123,s=QSXCR+Q6sek8bf92,i=4096"); err == nil {
		t.Fatal("accepted a nonce that does not extend ours")
	}
}
