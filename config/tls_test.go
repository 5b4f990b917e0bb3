package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/guard-xmpp/guard/proxy"
)

// testPKI is a certificate and key pair, and a root, written into a
// temporary directory.
type testPKI struct {
	dir               string
	certFile, keyFile string // a valid pair for xmpp.example.net
	otherKey          string // a key that is not certFile's
	rootFile          string // the self-signed certificate that signed certFile
	expiredCert       string // an expired certificate whose key is expiredKey
	expiredKey        string
}

// newPKI writes a test PKI into t.TempDir().
func newPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir()}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(p.dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	writeKey := func(name string, k *ecdsa.PrivateKey) string {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name, "PRIVATE KEY", der)
	}
	now := time.Now()
	rootKey := newKey()
	root := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Guard test root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	p.rootFile = write("root.pem", "CERTIFICATE", rootDER)

	leaf := func(name string, notAfter time.Time, k *ecdsa.PrivateKey) string {
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "xmpp.example.net"},
			DNSNames:  []string{"xmpp.example.net"},
			NotBefore: notAfter.Add(-48 * time.Hour), NotAfter: notAfter,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, root, &k.PublicKey, rootKey)
		if err != nil {
			t.Fatal(err)
		}
		// The chain: the leaf, then the root.
		b := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})...)
		path := filepath.Join(p.dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	k := newKey()
	p.certFile = leaf("tls.crt", now.Add(24*time.Hour), k)
	p.keyFile = writeKey("tls.key", k)
	p.otherKey = writeKey("other.key", newKey())
	ek := newKey()
	p.expiredCert = leaf("expired.crt", now.Add(-time.Hour), ek)
	p.expiredKey = writeKey("expired.key", ek)
	return p
}

// file writes content to name in the PKI's directory and returns its path.
func (p *testPKI) file(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// tlsListener returns a listener "c2s" on line 1 whose tls block, on line
// 4, has body; then a backend. A diagnostic in body's first line is on line 5.
func tlsListener(body string) string {
	return "listener \"c2s\" {\n  address = \"0.0.0.0:5222\"\n  backend = \"xmpp\"\n  tls {\n" + body +
		"\n  }\n}\nbackend \"xmpp\" { address = \"127.0.0.1:5262\" }\n"
}

// acmeBlock is a valid acme block; its line numbers start at 1.
const acmeBlock = `acme {
  ca      = "https://acme.example.net/dir"
  email   = "ops@example.net"
  domains = ["xmpp.example.net"]
}
`

func TestParseTLSValid(t *testing.T) {
	p := newPKI(t)
	files := fmt.Sprintf("    cert_file = %q\n    key_file = %q\n", p.certFile, p.keyFile)
	defaultACME := &ACME{
		CA: "https://acme.example.net/dir", Email: "ops@example.net", Domains: []string{"xmpp.example.net"},
		Storage: "./certmagic", Challenges: []string{"tls-alpn-01"},
	}
	tests := []struct {
		name string
		src  string
		tls  TLS
		acme *ACME
	}{
		{"an empty tls block is none", tlsListener(""), TLS{Mode: proxy.TLSNone, MinVersion: "1.2"}, nil},
		{"none written out", tlsListener(`mode = "none"
min_version = "1.2"
alpn = []`), TLS{Mode: proxy.TLSNone, MinVersion: "1.2"}, nil},
		{"starttls with files", tlsListener(`mode = "starttls"
` + files), TLS{Mode: proxy.TLSStartTLS, CertFile: p.certFile, KeyFile: p.keyFile, MinVersion: "1.2"}, nil},
		{"direct gets xmpp-client", tlsListener(`mode = "direct"
` + files), TLS{Mode: proxy.TLSDirect, CertFile: p.certFile, KeyFile: p.keyFile, ALPN: []string{"xmpp-client"}, MinVersion: "1.2"}, nil},
		{"direct with every key", tlsListener(`mode = "direct"
` + files + `
alpn = ["xmpp-client", "x-custom"]
min_version = "1.3"`), TLS{Mode: proxy.TLSDirect, CertFile: p.certFile, KeyFile: p.keyFile,
			ALPN: []string{"xmpp-client", "x-custom"}, MinVersion: "1.3"}, nil},
		{"direct with empty alpn offers none", tlsListener(`mode = "direct"
` + files + `
alpn = []`), TLS{Mode: proxy.TLSDirect, CertFile: p.certFile, KeyFile: p.keyFile, MinVersion: "1.2"}, nil},
		{"direct with null alpn gets the default", tlsListener(`mode = "direct"
` + files + `
alpn = null`), TLS{Mode: proxy.TLSDirect, CertFile: p.certFile, KeyFile: p.keyFile, ALPN: []string{"xmpp-client"}, MinVersion: "1.2"}, nil},
		{"min_version as a number", tlsListener(`mode = "starttls"
` + files + `
min_version = 1.3`), TLS{Mode: proxy.TLSStartTLS, CertFile: p.certFile, KeyFile: p.keyFile, MinVersion: "1.3"}, nil},
		{"passthrough", tlsListener(`mode = "passthrough"`), TLS{Mode: proxy.TLSPassthrough, MinVersion: "1.2"}, nil},
		{"empty paths are unset", tlsListener(`cert_file = ""
key_file = ""`), TLS{Mode: proxy.TLSNone, MinVersion: "1.2"}, nil},
		{"starttls by acme", tlsListener(`mode = "starttls"`) + acmeBlock,
			TLS{Mode: proxy.TLSStartTLS, MinVersion: "1.2"}, defaultACME},
		{"files win over acme", tlsListener(`mode = "direct"
`+files) + "listener \"acme\" {\n  address = \":5223\"\n  backend = \"xmpp\"\n  tls { mode = \"starttls\" }\n}\n" + acmeBlock,
			TLS{Mode: proxy.TLSDirect, CertFile: p.certFile, KeyFile: p.keyFile, ALPN: []string{"xmpp-client"}, MinVersion: "1.2"}, defaultACME},
		{"acme with every key", tlsListener(`mode = "direct"`) + fmt.Sprintf(`acme {
  ca            = "https://localhost:14000/dir"
  email         = "admin@guard.test"
  domains       = ["guard.test", "XMPP-2.Example.NET", "localhost"]
  storage       = %q
  trusted_roots = %q
  challenges    = ["http-01", "tls-alpn-01"]
  http_address  = "127.0.0.1:5002"
}
`, p.dir, p.rootFile), TLS{Mode: proxy.TLSDirect, ALPN: []string{"xmpp-client"}, MinVersion: "1.2"}, &ACME{
			CA: "https://localhost:14000/dir", Email: "admin@guard.test",
			Domains: []string{"guard.test", "XMPP-2.Example.NET", "localhost"}, Storage: p.dir, TrustedRoots: p.rootFile,
			Challenges: []string{"http-01", "tls-alpn-01"}, HTTPAddress: "127.0.0.1:5002",
		}},
		{"acme defaults written out", tlsListener(`mode = "direct"`) + `acme {
  ca            = "https://acme.example.net/dir"
  email         = "ops@example.net"
  domains       = ["xmpp.example.net"]
  storage       = "./certmagic"
  trusted_roots = ""
  challenges    = ["tls-alpn-01"]
  http_address  = null
}
`, TLS{Mode: proxy.TLSDirect, ALPN: []string{"xmpp-client"}, MinVersion: "1.2"}, defaultACME},
		{"http-01 alone, on all interfaces", tlsListener(`mode = "starttls"`) + `acme {
  ca           = "https://acme.example.net/dir"
  email        = "ops@example.net"
  domains      = ["xmpp.example.net"]
  challenges   = ["http-01"]
  http_address = ":80"
}
`, TLS{Mode: proxy.TLSStartTLS, MinVersion: "1.2"}, &ACME{
			CA: "https://acme.example.net/dir", Email: "ops@example.net", Domains: []string{"xmpp.example.net"},
			Storage: "./certmagic", Challenges: []string{"http-01"}, HTTPAddress: ":80",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.hcl", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if w := c.Warnings(); w != nil {
				t.Errorf("Warnings: %v", w)
			}
			if got := c.Listeners[0].TLS; !reflect.DeepEqual(got, tt.tls) {
				t.Errorf("TLS:\n got %+v\nwant %+v", got, tt.tls)
			}
			if !reflect.DeepEqual(c.ACME, tt.acme) {
				t.Errorf("ACME:\n got %+v\nwant %+v", c.ACME, tt.acme)
			}
		})
	}
}

func TestParseTLSRules(t *testing.T) {
	p := newPKI(t)
	pair := func(cert, key string) string {
		return fmt.Sprintf("    cert_file = %q\n    key_file  = %q", cert, key)
	}
	// acme returns an acme block, on line 9 after tlsListener, with body.
	acme := func(body string) string { return "acme {\n" + body + "\n}\n" }
	const acmeHead = `ca = "https://acme.example.net/dir"
email = "ops@example.net"
`
	tests := []struct {
		name   string
		src    string
		want   []string // diagLines
		detail string   // a substring of the first diagnostic's detail
	}{
		{"bad mode", tlsListener(`mode = "startls"`),
			[]string{"5,8 Invalid TLS mode"}, `Did you mean "starttls"? Use one of "none", "starttls", "direct", "passthrough"; the default is "none".`},
		{"mode in upper case", tlsListener(`mode = "STARTTLS"`),
			[]string{"5,8 Invalid TLS mode"}, `Did you mean "starttls"?`},
		{"bad mode hides the checks that depend on it", tlsListener(`mode = "tls"
cert_file = "x.crt"
alpn = ["xmpp-client"]`),
			[]string{"5,8 Invalid TLS mode"}, ""},
		{"starttls without a certificate", tlsListener(`mode = "starttls"`),
			[]string{"4,3 No certificate"},
			`listener "c2s" has tls mode "starttls" and no certificate: set cert_file and key_file, or add an acme block.`},
		{"direct without a certificate", tlsListener(`mode = "direct"`),
			[]string{"4,3 No certificate"}, `no certificate: set cert_file and key_file, or add an acme block`},
		{"cert_file without key_file", tlsListener(`mode = "starttls"
cert_file = "tls.crt"`),
			[]string{"6,13 Missing key_file"}, `add key_file, e.g. key_file = "tls.key".`},
		{"key_file without cert_file", tlsListener(`mode = "direct"
key_file = "tls.key"`),
			[]string{"6,12 Missing cert_file"}, `add cert_file, e.g. cert_file = "tls.crt".`},
		{"passthrough with cert_file", tlsListener(`mode = "passthrough"
` + pair(p.certFile, p.keyFile)),
			[]string{"6,17 Certificate without TLS", "7,17 Certificate without TLS"},
			`With mode = "passthrough" Guard does not terminate TLS`},
		{"none with cert_file", tlsListener(pair(p.certFile, p.keyFile)),
			[]string{"5,17 Certificate without TLS", "6,17 Certificate without TLS"},
			`With mode = "none" (the default) the listener speaks no TLS, so Guard never uses cert_file.`},
		{"missing files", tlsListener(`mode = "starttls"
` + pair("testdata/no-such.crt", filepath.Join(p.dir, "no-such.key"))),
			[]string{"6,17 Unreadable certificate file", "7,17 Unreadable key file"},
			`Guard cannot read cert_file "testdata/no-such.crt": no such file or directory. A relative path is read from Guard's working directory`},
		{"a directory", tlsListener(`mode = "starttls"
` + pair(p.dir, p.keyFile)),
			[]string{"6,17 Unreadable certificate file"}, `: not a regular file.`},
		{"not PEM", tlsListener(`mode = "starttls"
` + pair(p.file(t, "junk.crt", "junk"), p.keyFile)),
			[]string{"6,17 Invalid certificate file"}, `holds no PEM certificate`},
		{"swapped files", tlsListener(`mode = "starttls"
` + pair(p.keyFile, p.certFile)),
			[]string{"6,17 Invalid certificate file"}, `but a private key: are cert_file and key_file swapped?`},
		{"broken certificate", tlsListener(`mode = "starttls"
` + pair(p.file(t, "broken.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), p.keyFile)),
			[]string{"6,17 Invalid certificate file"}, `holds a certificate that does not parse (number 1 of the file)`},
		{"key of another certificate", tlsListener(`mode = "direct"
` + pair(p.certFile, p.otherKey)),
			[]string{"7,17 Invalid key file"}, `private key does not match public key`},
		{"key file without a key", tlsListener(`mode = "direct"
` + pair(p.certFile, p.rootFile)),
			[]string{"7,17 Invalid key file"}, `key_file must hold the PEM private key`},
		{"bad min_version", tlsListener(`mode = "starttls"
` + pair(p.certFile, p.keyFile) + `
min_version = "1.0"`),
			[]string{"8,15 Invalid TLS version"}, `Use one of "1.2", "1.3"; the default is "1.2".`},
		{"alpn not a list", tlsListener(`mode = "direct"
` + pair(p.certFile, p.keyFile) + `
alpn = "xmpp-client"`),
			[]string{"8,8 Incorrect argument type"}, `alpn is a list: put the value in brackets, alpn = ["xmpp-client"].`},
		{"alpn elements", tlsListener(`mode = "direct"
` + pair(p.certFile, p.keyFile) + `
alpn = ["", "acme-tls/1", "xmpp-client", "xmpp-client", ["x"], null]`),
			[]string{
				"8,9 Invalid ALPN protocol", "8,13 Reserved ALPN protocol", "8,42 Duplicate ALPN protocol",
				"8,57 Incorrect list element type", "8,64 Incorrect list element type",
			}, `An ALPN protocol name cannot be empty.`},
		{"alpn too long", tlsListener(`mode = "direct"
` + pair(p.certFile, p.keyFile) + `
alpn = ["` + strings.Repeat("x", 256) + `"]`),
			[]string{"8,9 Invalid ALPN protocol"}, `at most 255 bytes, and this one has 256`},
		{"duplicate tls block", "listener \"c2s\" {\n  address = \":5222\"\n  backend = \"xmpp\"\n  tls {}\n  tls {}\n}\n" +
			"backend \"xmpp\" { address = \"h:1\" }\n",
			[]string{"5,3 Duplicate tls block"}, `Only one tls block is allowed`},
		{"unknown tls key", tlsListener(`certificate = "x"`),
			[]string{"5,1 Unsupported argument"},
			`A tls block takes the arguments "mode", "cert_file", "key_file", "alpn", "min_version".`},

		{"acme without anything", tlsListener(`mode = "starttls"`) + "acme {}\n",
			[]string{"9,1 Missing required argument", "9,1 Missing required argument", "9,1 Missing required argument"},
			`acme has no ca. Add one, e.g. ca = "https://acme-v02.api.letsencrypt.org/directory".`},
		{"acme without domains", tlsListener(`mode = "starttls"`) + acme(acmeHead),
			[]string{"9,1 Missing required argument"}, `acme has no domains. Add the names to obtain certificates for, e.g. domains = ["xmpp.example.net"].`},
		{"acme with empty domains", tlsListener(`mode = "starttls"`) + acme(acmeHead+`domains = []`),
			[]string{"12,11 No domains"}, `domains = [] names no domain`},
		{"bad domains", tlsListener(`mode = "starttls"`) + acme(acmeHead+
			`domains = ["*.example.net", "192.0.2.1", "https://x.example", "x.example.", "a..b", "-a.b", "a_b.c", "ok.example", "OK.example", ""]`),
			[]string{
				"12,12 Invalid domain", "12,29 Invalid domain", "12,42 Invalid domain", "12,63 Invalid domain",
				"12,77 Invalid domain", "12,85 Invalid domain", "12,93 Invalid domain", "12,116 Duplicate domain",
				"12,130 Invalid domain",
			}, `a wildcard certificate needs the dns-01 challenge, which Guard does not support`},
		{"domain too long", tlsListener(`mode = "starttls"`) + acme(acmeHead+
			`domains = ["`+strings.Repeat("a", 64)+`.example"]`),
			[]string{"12,12 Invalid domain"}, `has 64 characters, and a label at most 63`},
		{"bad ca and email", tlsListener(`mode = "starttls"`) + acme(`ca = "http://acme.example.net/dir"
email = "Ops <ops@example.net>"
domains = ["xmpp.example.net"]`),
			[]string{"10,6 Invalid ACME directory URL", "11,9 Invalid email address"},
			`ACME servers are reached over HTTPS only (RFC 8555 section 6.1). Write "https://acme.example.net/dir".`},
		{"ca not a URL", tlsListener(`mode = "starttls"`) + acme(`ca = "letsencrypt"
email = "ops@example.net"
domains = ["xmpp.example.net"]`),
			[]string{"10,6 Invalid ACME directory URL"}, `"letsencrypt" is not an https URL. ca is the directory URL of the ACME CA`},
		{"bad challenges", tlsListener(`mode = "starttls"`) + acme(acmeHead+`domains = ["x.example"]
challenges = ["tls-alpn-01", "dns-01", "http01", "tls-alpn-01"]`),
			[]string{"13,30 Unsupported challenge", "13,40 Invalid challenge", "13,50 Duplicate challenge"},
			`Guard does not support the dns-01 challenge.`},
		{"no challenges", tlsListener(`mode = "starttls"`) + acme(acmeHead+`domains = ["x.example"]
challenges = []`),
			[]string{"13,14 No challenges"}, `leaves the CA no way to check`},
		{"http-01 without http_address", tlsListener(`mode = "starttls"`) + acme(acmeHead+`domains = ["x.example"]
challenges = ["http-01"]`),
			[]string{"9,1 Missing required argument"}, `e.g. http_address = ":80".`},
		{"bad http_address", tlsListener(`mode = "starttls"`) + acme(acmeHead+`domains = ["x.example"]
challenges = ["http-01"]
http_address = "80"`),
			[]string{"14,16 Invalid address"}, `"80" is not HOST:PORT`},
		{"http_address on a free port", tlsListener(`mode = "starttls"`) + acme(acmeHead+`domains = ["x.example"]
challenges = ["http-01"]
http_address = ":0"`),
			[]string{"14,16 Invalid port"}, `picks a free port, which the CA cannot know`},
		{"http_address on a listener's address", tlsListener(`mode = "starttls"`) + acme(acmeHead+`domains = ["x.example"]
challenges = ["http-01"]
http_address = "0.0.0.0:5222"`),
			[]string{"14,16 Duplicate listen address"}, `The ACME http-01 solver listens on "0.0.0.0:5222", which listener "c2s" already uses`},
		{"empty storage", tlsListener(`mode = "starttls"`) + acme(acmeHead+`domains = ["x.example"]
storage = ""`),
			[]string{"13,11 Empty storage"}, `storage = "" names no directory.`},
		{"storage is a file", tlsListener(`mode = "starttls"`) + acme(acmeHead+`domains = ["x.example"]
storage = "`+p.certFile+`"`),
			[]string{"13,11 Storage is not a directory"}, `exists and is not a directory`},
		{"trusted_roots missing", tlsListener(`mode = "starttls"`) + acme(acmeHead+`domains = ["x.example"]
trusted_roots = "`+filepath.Join(p.dir, "none.pem")+`"`),
			[]string{"13,17 Unreadable trusted_roots file"}, `no such file or directory.`},
		{"trusted_roots without a certificate", tlsListener(`mode = "starttls"`) + acme(acmeHead+`domains = ["x.example"]
trusted_roots = "`+p.keyFile+`"`),
			[]string{"13,17 No certificate in trusted_roots"}, `holds no PEM certificate that parses`},
		{"duplicate acme block", tlsListener(`mode = "starttls"`) + acme(acmeHead+`domains = ["x.example"]`) + "acme {}\n",
			[]string{"14,1 Duplicate acme block"}, `Only one acme block is allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.hcl", []byte(tt.src))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse = %+v, %v; want an *Error", c, err)
			}
			got := diagLines(e.Diags)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q\n%v", got, tt.want, e)
			}
			for _, d := range e.Diags {
				if d.Summary == "" || d.Detail == "" || d.Subject == nil {
					t.Errorf("diagnostic without summary, detail or position: %+v", d)
				}
			}
			if tt.detail != "" && !strings.Contains(e.Diags[0].Detail, tt.detail) {
				t.Errorf("detail %q\ndoes not contain %q", e.Diags[0].Detail, tt.detail)
			}
		})
	}
}

func TestParseTLSWarnings(t *testing.T) {
	p := newPKI(t)
	pair := fmt.Sprintf("\n    cert_file = %q\n    key_file  = %q", p.certFile, p.keyFile)
	tests := []struct {
		name  string
		src   string
		want  []string // diagLines
		check func(*Config) bool
	}{
		{"alpn without direct", tlsListener(`mode = "starttls"` + pair + `
alpn = ["xmpp-client"]`),
			[]string{"8,8 warning: Unused alpn"},
			func(c *Config) bool { return c.Listeners[0].TLS.ALPN == nil }},
		{"alpn in mode none", tlsListener(`alpn = ["xmpp-client"]`),
			[]string{"5,8 warning: Unused alpn"}, nil},
		{"min_version without termination", tlsListener(`mode = "passthrough"
min_version = "1.3"`),
			[]string{"6,15 warning: Unused min_version"},
			func(c *Config) bool { return c.Listeners[0].TLS.MinVersion == "1.2" }},
		{"expired certificate", tlsListener(fmt.Sprintf("mode = \"direct\"\ncert_file = %q\nkey_file = %q", p.expiredCert, p.expiredKey)),
			[]string{"6,13 warning: Expired certificate"},
			func(c *Config) bool { return c.Listeners[0].TLS.CertFile == p.expiredCert }},
		{"unused acme", tlsListener(`mode = "direct"`+pair) + acmeBlock,
			[]string{"11,1 warning: Unused acme block"},
			func(c *Config) bool { return c.ACME != nil }},
		{"acme without tls", minimal + acmeBlock,
			[]string{"9,1 warning: Unused acme block"}, nil},
		{"http_address without http-01", tlsListener(`mode = "direct"`) + `acme {
  ca           = "https://acme.example.net/dir"
  email        = "ops@example.net"
  domains      = ["xmpp.example.net"]
  http_address = ":80"
}
`, []string{"13,18 warning: Unused http_address"},
			func(c *Config) bool { return c.ACME.HTTPAddress == "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.hcl", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var got []string
			if w := c.Warnings(); w != nil {
				got = diagLines(w.(*Error).Diags)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("warnings:\n got %q\nwant %q\n%v", got, tt.want, c.Warnings())
			}
			if tt.check != nil && !tt.check(c) {
				t.Errorf("Config: listeners %+v, acme %+v", c.Listeners, c.ACME)
			}
		})
	}
}

// TestDNSName checks the names an acme block accepts.
func TestDNSName(t *testing.T) {
	for _, name := range []string{"xmpp.example.net", "localhost", "a-b.c0", "xn--bcher-kva.example", strings.Repeat("a", 63) + ".x"} {
		if why := dnsName(name); why != "" {
			t.Errorf("dnsName(%q) = %q, want valid", name, why)
		}
	}
	long := strings.Repeat(strings.Repeat("a", 60)+".", 5) + "x"
	for _, name := range []string{"", "*.x", "::1", "[::1]", "1.2.3.4", "a.b.", ".a", "a-.b", "bücher.example", long, "a:5222", "a b"} {
		if why := dnsName(name); why == "" {
			t.Errorf("dnsName(%q) is valid, want a reason", name)
		}
	}
}

// tlsBackend returns a listener, then on line 5 a backend "xmpp" at address
// whose tls block, on line 7, has body. A diagnostic in body's first line
// is on line 8.
func tlsBackend(address, body string) string {
	return "listener \"c2s\" {\n  address = \"0.0.0.0:5222\"\n  backend = \"xmpp\"\n}\n" +
		fmt.Sprintf("backend \"xmpp\" {\n  address = %q\n  tls {\n", address) + body + "\n  }\n}\n"
}

func TestParseBackendTLSValid(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name string
		src  string
		want *BackendTLS
	}{
		{"an empty tls block verifies the host of address", tlsBackend("openfire.internal:5223", ""),
			&BackendTLS{ServerName: "openfire.internal", MinVersion: "1.2"}},
		{"an IPv4 host is kept", tlsBackend("10.0.0.7:5223", ""),
			&BackendTLS{ServerName: "10.0.0.7", MinVersion: "1.2"}},
		{"an IPv6 host is kept, without brackets", tlsBackend("[2001:db8::7]:5223", ""),
			&BackendTLS{ServerName: "2001:db8::7", MinVersion: "1.2"}},
		{"an IPv6 host loses its zone", tlsBackend("[fe80::1%eth0]:5223", ""),
			&BackendTLS{ServerName: "fe80::1", MinVersion: "1.2"}},
		{"every key", tlsBackend("10.0.0.7:5223", fmt.Sprintf(`server_name = "Openfire.Internal"
ca_file = %q
insecure_skip_verify = false
min_version = "1.3"`, p.rootFile)),
			&BackendTLS{ServerName: "Openfire.Internal", CAFile: p.rootFile, MinVersion: "1.3"}},
		{"a chain holds certificates too", tlsBackend("openfire.internal:5223", fmt.Sprintf(`ca_file = %q`, p.certFile)),
			&BackendTLS{ServerName: "openfire.internal", CAFile: p.certFile, MinVersion: "1.2"}},
		{"server_name an IPv4 address", tlsBackend("openfire.internal:5223", `server_name = "192.0.2.1"`),
			&BackendTLS{ServerName: "192.0.2.1", MinVersion: "1.2"}},
		{"server_name an IPv6 address", tlsBackend("openfire.internal:5223", `server_name = "2001:db8::1"`),
			&BackendTLS{ServerName: "2001:db8::1", MinVersion: "1.2"}},
		{"defaults written out", tlsBackend("openfire.internal:5223", `ca_file = ""
insecure_skip_verify = false
min_version = "1.2"`),
			&BackendTLS{ServerName: "openfire.internal", MinVersion: "1.2"}},
		{"null takes the defaults", tlsBackend("openfire.internal:5223", `server_name = null
ca_file = null
insecure_skip_verify = null
min_version = null`),
			&BackendTLS{ServerName: "openfire.internal", MinVersion: "1.2"}},
		{"min_version as a number", tlsBackend("openfire.internal:5223", `min_version = 1.3`),
			&BackendTLS{ServerName: "openfire.internal", MinVersion: "1.3"}},
		{"no tls block is plaintext", minimal, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.hcl", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if w := c.Warnings(); w != nil {
				t.Errorf("Warnings: %v", w)
			}
			if got := c.Backends[0].TLS; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("TLS:\n got %+v\nwant %+v", got, tt.want)
			}
			if got := c.Listeners[0].TLS; !reflect.DeepEqual(got, TLS{Mode: proxy.TLSNone, MinVersion: "1.2"}) {
				t.Errorf("the listener's TLS changed: %+v", got)
			}
		})
	}
}

func TestParseBackendTLSRules(t *testing.T) {
	p := newPKI(t)
	const addr = "openfire.internal:5223"
	tests := []struct {
		name   string
		src    string
		want   []string // diagLines
		detail string   // a substring of the first diagnostic's detail
	}{
		{"empty server_name", tlsBackend(addr, `server_name = ""`),
			[]string{"8,15 Empty server_name"},
			`server_name = "" names no server to verify. Write the name in the backend's certificate, e.g. server_name = "openfire.internal", ` +
				`or leave it out for the default, the host of address ("openfire.internal").`},
		{"empty server_name, bad address", tlsBackend("openfire.internal", `server_name = ""`),
			[]string{"6,13 Invalid address", "8,15 Empty server_name"}, `is not HOST:PORT`},
		{"a bad address is reported once", tlsBackend("openfire.internal", ""),
			[]string{"6,13 Invalid address"}, `is not HOST:PORT`},
		{"wildcard server_name", tlsBackend(addr, `server_name = "*.internal"`),
			[]string{"8,15 Invalid server_name"}, `"*.internal" is not a DNS name or an IP address: it is a wildcard.`},
		{"server_name with a port", tlsBackend(addr, `server_name = "openfire.internal:5223"`),
			[]string{"8,15 Invalid server_name"}, `write the name alone, without scheme, port or path`},
		{"server_name a URL", tlsBackend(addr, `server_name = "https://openfire.internal"`),
			[]string{"8,15 Invalid server_name"}, `write the name alone, without scheme, port or path`},
		{"server_name in brackets", tlsBackend(addr, `server_name = "[2001:db8::1]"`),
			[]string{"8,15 Invalid server_name"}, `write an IP address without brackets, "2001:db8::1".`},
		{"server_name with a zone", tlsBackend(addr, `server_name = "fe80::1%eth0"`),
			[]string{"8,15 Invalid server_name"}, `an IP address is written without its zone, "fe80::1".`},
		{"server_name with a final dot", tlsBackend(addr, `server_name = "openfire.internal."`),
			[]string{"8,15 Invalid server_name"}, `write it without the final dot, "openfire.internal"`},
		{"server_name with an underscore", tlsBackend(addr, `server_name = "open_fire.internal"`),
			[]string{"8,15 Invalid server_name"}, `'_' is not allowed`},
		{"server_name a list", tlsBackend(addr, `server_name = ["openfire.internal"]`),
			[]string{"8,15 Incorrect argument type"}, `server_name must be a string in quotes, not a list`},
		{"missing ca_file", tlsBackend(addr, fmt.Sprintf(`ca_file = %q`, filepath.Join(p.dir, "none.pem"))),
			[]string{"8,11 Unreadable CA file"}, `Guard cannot read ca_file "` + filepath.Join(p.dir, "none.pem") + `": no such file or directory.`},
		{"missing relative ca_file", tlsBackend(addr, `ca_file = "backend-ca.pem"`),
			[]string{"8,11 Unreadable CA file"}, `A relative path is read from Guard's working directory`},
		{"ca_file a directory", tlsBackend(addr, fmt.Sprintf(`ca_file = %q`, p.dir)),
			[]string{"8,11 Unreadable CA file"}, `: not a regular file.`},
		{"ca_file too large", tlsBackend(addr, fmt.Sprintf(`ca_file = %q`, p.file(t, "huge.pem", strings.Repeat("x", 1<<20+1)))),
			[]string{"8,11 Unreadable CA file"}, `larger than 1MiB`},
		{"ca_file of 1 MiB without a certificate", tlsBackend(addr, fmt.Sprintf(`ca_file = %q`, p.file(t, "big.pem", strings.Repeat("x", 1<<20)))),
			[]string{"8,11 No certificate in ca_file"}, `holds no PEM certificate that parses`},
		{"ca_file without a certificate", tlsBackend(addr, fmt.Sprintf(`ca_file = %q`, p.keyFile)),
			[]string{"8,11 No certificate in ca_file"},
			`It must hold the root certificates of the CA that issued the backend's certificate, or be "" for the system roots only.`},
		{"insecure_skip_verify in quotes", tlsBackend(addr, `insecure_skip_verify = "true"`),
			[]string{"8,24 Incorrect argument type"}, `insecure_skip_verify must be true or false, written without quotes: insecure_skip_verify = true.`},
		{"insecure_skip_verify a number", tlsBackend(addr, `insecure_skip_verify = 1`),
			[]string{"8,24 Incorrect argument type"}, `insecure_skip_verify must be true or false, not number, e.g. insecure_skip_verify = true.`},
		{"insecure_skip_verify a bare word", tlsBackend(addr, `insecure_skip_verify = yes`),
			[]string{"8,24 Variables not allowed"}, ``},
		{"bad min_version", tlsBackend(addr, `min_version = "1.1"`),
			[]string{"8,15 Invalid TLS version"}, `Use one of "1.2", "1.3"; the default is "1.2".`},
		{"insecure with an unreadable ca_file", tlsBackend(addr, `ca_file = "backend-ca.pem"
insecure_skip_verify = true`),
			[]string{"8,11 Unreadable CA file", "9,24 warning: Backend certificate not verified"}, `Guard cannot read ca_file`},
		{"a listener's tls key", tlsBackend(addr, `mode = "direct"`),
			[]string{"8,1 Unsupported argument"},
			`A backend's tls block takes the arguments "server_name", "ca_file", "insecure_skip_verify", "min_version".`},
		{"duplicate tls block", "listener \"c2s\" {\n  address = \":5222\"\n  backend = \"xmpp\"\n}\n" +
			"backend \"xmpp\" {\n  address = \"h:1\"\n  tls {}\n  tls {}\n}\n",
			[]string{"8,3 Duplicate tls block"}, `Only one tls block is allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.hcl", []byte(tt.src))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse = %+v, %v; want an *Error", c, err)
			}
			got := diagLines(e.Diags)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("diagnostics:\n got %q\nwant %q\n%v", got, tt.want, e)
			}
			for _, d := range e.Diags {
				if d.Summary == "" || d.Detail == "" || d.Subject == nil {
					t.Errorf("diagnostic without summary, detail or position: %+v", d)
				}
			}
			if tt.detail != "" && !strings.Contains(e.Diags[0].Detail, tt.detail) {
				t.Errorf("detail %q\ndoes not contain %q", e.Diags[0].Detail, tt.detail)
			}
		})
	}
}

func TestParseBackendTLSWarnings(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name   string
		src    string
		want   []string // diagLines
		detail string   // a substring of the first warning's detail
		tls    *BackendTLS
	}{
		{"insecure_skip_verify", tlsBackend("10.0.0.7:5223", `insecure_skip_verify = true`),
			[]string{"8,24 warning: Backend certificate not verified"},
			`With insecure_skip_verify = true Guard accepts any certificate from backend "xmpp"`,
			&BackendTLS{ServerName: "10.0.0.7", InsecureSkipVerify: true, MinVersion: "1.2"}},
		{"insecure_skip_verify with ca_file", tlsBackend("openfire.internal:5223", fmt.Sprintf(`ca_file = %q
insecure_skip_verify = true`, p.rootFile)),
			[]string{"8,11 warning: Unused ca_file", "9,24 warning: Backend certificate not verified"},
			`insecure_skip_verify = true turns verification off, so Guard never uses ca_file "` + p.rootFile + `".`,
			&BackendTLS{ServerName: "openfire.internal", InsecureSkipVerify: true, MinVersion: "1.2"}},
		{"insecure_skip_verify with server_name and min_version", tlsBackend("10.0.0.7:5223", `server_name = "openfire.internal"
insecure_skip_verify = true
min_version = "1.3"`),
			[]string{"9,24 warning: Backend certificate not verified"}, `Use it for tests only`,
			&BackendTLS{ServerName: "openfire.internal", InsecureSkipVerify: true, MinVersion: "1.3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("test.hcl", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			var diags []*hcl.Diagnostic
			if w := c.Warnings(); w != nil {
				diags = w.(*Error).Diags
			}
			if got := diagLines(diags); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("warnings:\n got %q\nwant %q\n%v", got, tt.want, c.Warnings())
			}
			if len(diags) > 0 && !strings.Contains(diags[0].Detail, tt.detail) {
				t.Errorf("detail %q\ndoes not contain %q", diags[0].Detail, tt.detail)
			}
			if got := c.Backends[0].TLS; !reflect.DeepEqual(got, tt.tls) {
				t.Errorf("TLS:\n got %+v\nwant %+v", got, tt.tls)
			}
		})
	}
}
