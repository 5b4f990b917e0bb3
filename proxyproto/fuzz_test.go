package proxyproto

import (
	"bytes"
	"errors"
	"testing"
	"testing/iotest"
)

// FuzzRead checks, for any input, that Read does not panic, that it reads
// the same way whatever the reader's chunking, that a header it accepts is
// exactly the bytes it consumed, and that re-encoding an accepted header and
// reading it again gives the same header.
//
// The committed seed corpus is in testdata/fuzz/FuzzRead.
func FuzzRead(f *testing.F) {
	for _, tt := range validTests {
		f.Add(append(append([]byte(nil), tt.wire...), payload...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		h, err := Read(r)
		n := len(data) - r.Len()

		r1 := bytes.NewReader(data)
		h1, err1 := Read(iotest.OneByteReader(r1))
		if errString(err) != errString(err1) || !equalHeader(h, h1) || len(data)-r1.Len() != n {
			t.Fatalf("whole reads: %+v, %v, %d bytes; one-byte reads: %+v, %v, %d bytes",
				h, err, n, h1, err1, len(data)-r1.Len())
		}
		if n > 16+216+MaxTLVBytes {
			t.Fatalf("Read consumed %d bytes", n)
		}
		if err != nil {
			var e *Error
			if errors.As(err, &e) && e.Kind != ErrNoHeader && e.Kind != ErrMalformed && e.Kind != ErrUnsupported {
				t.Fatalf("error of unknown kind: %v", err)
			}
			return
		}
		if h.Version != 1 && h.Version != 2 {
			t.Fatalf("Version = %d", h.Version)
		}
		if h.Source.IsValid() != h.Dest.IsValid() || (h.Source.IsValid() && h.Command != Proxy) {
			t.Fatalf("inconsistent header %+v", h)
		}

		// The header is exactly data[:n]: Read needs nothing after it.
		h2, err := Read(bytes.NewReader(data[:n]))
		if err != nil || !equalHeader(h, h2) {
			t.Fatalf("Read(data[:%d]) = %+v, %v; want %+v", n, h2, err, h)
		}

		var enc []byte
		if h.Version == 1 {
			enc = h.AppendV1(nil)
		} else {
			enc = h.AppendV2(nil)
		}
		r3 := bytes.NewReader(enc)
		h3, err := Read(r3)
		if err != nil || !equalHeader(h, h3) || r3.Len() != 0 {
			t.Fatalf("round trip of %+v through %q: %+v, %v, %d bytes left", h, enc, h3, err, r3.Len())
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
