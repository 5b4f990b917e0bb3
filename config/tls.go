package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/guard-xmpp/guard/proxy"
)

// This file decodes a listener's tls block, a backend's tls block and the
// acme block, and checks the files they name the way Guard will read them:
// paths are relative to the working directory, not to the configuration
// file.

// The modes of a tls block, by their names (proxy.TLSMode.String).
var tlsModes = []proxy.TLSMode{proxy.TLSNone, proxy.TLSStartTLS, proxy.TLSDirect, proxy.TLSPassthrough}

var tlsVersions = []string{"1.2", "1.3"}

// The ACME challenges Guard can answer.
const (
	challengeTLSALPN = "tls-alpn-01"
	challengeHTTP    = "http-01"
)

var acmeChallenges = []string{challengeTLSALPN, challengeHTTP}

// acmeALPN is the ALPN protocol of the tls-alpn-01 challenge (RFC 8737),
// which Guard answers only to ACME validations.
const acmeALPN = "acme-tls/1"

// maxPEMFile bounds the files read here: a certificate chain, a key or a
// set of roots is a few KiB.
const maxPEMFile = 1 * miB

// Examples used in messages.
const (
	exampleCA      = "https://acme-v02.api.letsencrypt.org/directory"
	exampleDomains = `["xmpp.example.net"]`
)

func (d *decoder) tls(b *hcl.Block) decoded[TLS] {
	a := d.content(b.Body, tlsSchema, "A tls block").Attributes
	t := TLS{
		Mode:       enum(d, a["mode"], proxy.TLSNone, "TLS mode", tlsModes...),
		CertFile:   d.str(a["cert_file"], "", "tls.crt"),
		KeyFile:    d.str(a["key_file"], "", "tls.key"),
		MinVersion: d.oneOf(a["min_version"], defaultMinVersion, "TLS version", tlsVersions...),
	}
	alpn, alpnSet := d.alpn(a["alpn"])
	if at := a["mode"]; at != nil && d.reported(at) {
		// The mode is unknown: the checks below depend on it.
		return decoded[TLS]{value: t, block: b, attrs: a}
	}
	mode := fmt.Sprintf("mode = %q", t.Mode)
	if a["mode"] == nil {
		mode += " (the default)"
	}

	certAt, keyAt := a["cert_file"], a["key_file"]
	switch {
	case !t.Mode.Terminates():
		why := fmt.Sprintf("With %s the listener speaks no TLS", mode)
		if t.Mode == proxy.TLSPassthrough {
			why = fmt.Sprintf("With %s Guard does not terminate TLS: the client's TLS goes through to the backend, which holds the certificate", mode)
		}
		for _, f := range []struct {
			at   *hcl.Attribute
			path string
		}{{certAt, t.CertFile}, {keyAt, t.KeyFile}} {
			if f.path != "" {
				d.errorf(f.at.Expr.Range(), &f.at.Range, "Certificate without TLS",
					fmt.Sprintf(`%s, so Guard never uses %s. Set mode = "starttls" or "direct" for Guard to terminate TLS, or remove %s.`,
						why, f.at.Name, f.at.Name))
			}
		}
		t.CertFile, t.KeyFile = "", ""
	case t.CertFile != "" && t.KeyFile == "":
		d.errorf(certAt.Expr.Range(), &certAt.Range, "Missing key_file",
			`cert_file needs the file of its private key: add key_file, e.g. key_file = "tls.key".`)
	case t.KeyFile != "" && t.CertFile == "":
		d.errorf(keyAt.Expr.Range(), &keyAt.Range, "Missing cert_file",
			`key_file needs the file of its certificate chain: add cert_file, e.g. cert_file = "tls.crt".`)
	case t.CertFile != "":
		d.keyPair(certAt, keyAt, t.CertFile, t.KeyFile)
	}

	switch at := a["alpn"]; {
	case t.Mode != proxy.TLSDirect && alpnSet && len(alpn) > 0:
		d.warnf(at.Expr.Range(), &at.Range, "Unused alpn",
			fmt.Sprintf(`Guard offers ALPN on Direct TLS listeners only (XEP-0368); with %s alpn has no effect. Set mode = "direct", or remove alpn.`, mode))
	case t.Mode != proxy.TLSDirect:
	case alpnSet:
		t.ALPN = alpn
	case at == nil || !d.reported(at): // absent or null
		t.ALPN = []string{defaultDirectALPN}
	}
	if at := a["min_version"]; at != nil && !t.Mode.Terminates() && t.MinVersion != defaultMinVersion {
		d.warnf(at.Expr.Range(), &at.Range, "Unused min_version",
			fmt.Sprintf(`With %s Guard does not terminate TLS, so min_version has no effect. Set mode = "starttls" or "direct", or remove min_version.`, mode))
		t.MinVersion = defaultMinVersion
	}
	return decoded[TLS]{value: t, block: b, attrs: a}
}

// alpn returns the protocols of a, a list of ALPN protocol names, and
// whether a is set and valid; nil for an empty list.
func (d *decoder) alpn(a *hcl.Attribute) ([]string, bool) {
	list, at, ok := d.list(a, `["xmpp-client"]`)
	for i, p := range list {
		rng := at[i]
		switch {
		case p == "":
			d.errorf(rng, &a.Range, "Invalid ALPN protocol",
				`An ALPN protocol name cannot be empty. For XMPP over Direct TLS use "xmpp-client" (XEP-0368); alpn = [] offers no ALPN.`)
			ok = false
		case len(p) > 255:
			d.errorf(rng, &a.Range, "Invalid ALPN protocol",
				fmt.Sprintf("An ALPN protocol name has at most 255 bytes, and this one has %d.", len(p)))
			ok = false
		case p == acmeALPN:
			d.errorf(rng, &a.Range, "Reserved ALPN protocol",
				fmt.Sprintf("%q is the protocol of the ACME tls-alpn-01 challenge (RFC 8737): Guard answers it to ACME validations only, whatever alpn says. Remove it.", p))
			ok = false
		case slices.Contains(list[:i], p):
			d.errorf(rng, &a.Range, "Duplicate ALPN protocol",
				fmt.Sprintf("%q is already listed in alpn. List each protocol once.", p))
			ok = false
		}
	}
	if !ok || len(list) == 0 {
		return nil, ok
	}
	return list, true
}

// keyPair checks that certFile and keyFile, the values of the attributes
// cert and key, hold a PEM certificate chain and its private key that
// crypto/tls accepts, and reports what fails at the attribute of the file
// at fault. An expired certificate is a warning: Guard serves the file
// until it changes.
func (d *decoder) keyPair(cert, key *hcl.Attribute, certFile, keyFile string) {
	certPEM, certErr := readFile(certFile)
	if certErr != nil {
		d.errorf(cert.Expr.Range(), &cert.Range, "Unreadable certificate file",
			fmt.Sprintf("Guard cannot read cert_file %s", describeFileError(certFile, certErr)))
	}
	keyPEM, keyErr := readFile(keyFile)
	if keyErr != nil {
		d.errorf(key.Expr.Range(), &key.Range, "Unreadable key file",
			fmt.Sprintf("Guard cannot read key_file %s", describeFileError(keyFile, keyErr)))
	}
	if certErr != nil || keyErr != nil {
		return
	}
	leaf, err := firstCertificate(certPEM)
	if err != nil {
		d.errorf(cert.Expr.Range(), &cert.Range, "Invalid certificate file",
			fmt.Sprintf("cert_file %q %s. It must hold the PEM certificate chain, the server's certificate first.", certFile, err))
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		d.errorf(key.Expr.Range(), &key.Range, "Invalid key file",
			fmt.Sprintf("Guard cannot use key_file %q with cert_file %q: %s. key_file must hold the PEM private key of the first certificate of cert_file.",
				keyFile, certFile, strings.TrimPrefix(err.Error(), "tls: ")))
		return
	}
	if now := time.Now(); now.After(leaf.NotAfter) {
		d.warnf(cert.Expr.Range(), &cert.Range, "Expired certificate",
			fmt.Sprintf("The certificate in cert_file %q expired on %s; clients will refuse it. Guard picks up the files again when they change: renew it.",
				certFile, leaf.NotAfter.UTC().Format(time.DateOnly)))
	}
}

// firstCertificate parses every certificate of the PEM chain in b and
// returns the first. Its error completes a sentence that starts with the
// name of the file: "... holds no PEM certificate".
func firstCertificate(b []byte) (*x509.Certificate, error) {
	var first *x509.Certificate
	var others []string
	n := 0
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			others = append(others, block.Type)
			continue
		}
		n++
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("holds a certificate that does not parse (number %d of the file): %s", n, strings.TrimPrefix(err.Error(), "x509: "))
		}
		if first == nil {
			first = c
		}
	}
	if first != nil {
		return first, nil
	}
	detail := `holds no PEM certificate (a "-----BEGIN CERTIFICATE-----" block)`
	if slices.ContainsFunc(others, func(t string) bool { return strings.HasSuffix(t, "PRIVATE KEY") }) {
		detail += ` but a private key: are cert_file and key_file swapped?`
	}
	return nil, errors.New(detail)
}

// readFile reads the file at path, which must be a regular file of at most
// maxPEMFile bytes: a device or a pipe could block, or never end.
func readFile(path string) ([]byte, error) {
	return readLimited(path, maxPEMFile, "too large for PEM certificates or keys")
}

// readLimited reads the file at path, which must be a regular file of at
// most limit bytes; tooLarge ends the error for a larger one ("larger than
// 1MiB, too large for ...").
func readLimited(path string, limit int, tooLarge string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("larger than %s, %s", formatSize(limit), tooLarge)
	}
	return b, nil
}

// describeFileError ends a sentence about the failure err to read the file
// at path: `"a.crt": no such file or directory.`, with a word on relative
// paths when the file does not exist.
func describeFileError(path string, err error) string {
	why := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		why = pe.Err.Error()
	}
	s := fmt.Sprintf("%q: %s.", path, why)
	if errors.Is(err, fs.ErrNotExist) && !filepath.IsAbs(path) {
		s += " A relative path is read from Guard's working directory, not from the directory of this file."
	}
	return s
}

// list evaluates a as a list of strings, reporting every element that is
// not one at its position; example is a list to show, such as `["a"]`. It
// returns the elements that are strings, each with its range, so that the
// caller checks them too. ok is false when a is absent or null, and when a
// is reported.
func (d *decoder) list(a *hcl.Attribute, example string) (list []string, at []hcl.Range, ok bool) {
	v, ok := d.constant(a, true)
	if !ok {
		return nil, nil, false
	}
	t := v.Type()
	if !t.IsTupleType() && !t.IsListType() && !t.IsSetType() {
		detail := fmt.Sprintf("%s must be a list of strings in brackets, not %s, e.g. %s = %s.", a.Name, kind(t), a.Name, example)
		if t == cty.String {
			detail = fmt.Sprintf("%s is a list: put the value in brackets, %s = [%q].", a.Name, a.Name, v.AsString())
		}
		d.errorf(a.Expr.Range(), &a.Range, "Incorrect argument type", detail)
		return nil, nil, false
	}
	list = []string{}
	for i, e := range v.AsValueSlice() {
		s, err := convert.Convert(e, cty.String)
		if err != nil || s.IsNull() {
			what := "null"
			if !e.IsNull() {
				what = kind(e.Type())
			}
			d.errorf(elemRange(a, i), &a.Range, "Incorrect list element type",
				fmt.Sprintf("Each element of %s must be a string in quotes, not %s, e.g. %s = %s.", a.Name, what, a.Name, example))
			ok = false
			continue
		}
		list = append(list, s.AsString())
		at = append(at, elemRange(a, i))
	}
	return list, at, ok
}

// elemRange is the range of element i of the list that a sets, or of the
// whole value when the elements are not written out.
func elemRange(a *hcl.Attribute, i int) hcl.Range {
	if t, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok && i < len(t.Exprs) {
		return t.Exprs[i].Range()
	}
	return a.Expr.Range()
}

func (d *decoder) acme(b *hcl.Block) decoded[*ACME] {
	a := d.content(b.Body, acmeSchema, "An acme block").Attributes
	acme := &ACME{
		CA:           d.acmeCA(d.required(b, a, "ca", exampleCA)),
		Email:        d.email(d.required(b, a, "email", "ops@example.net")),
		Domains:      d.domains(b, a["domains"]),
		Storage:      d.storage(a["storage"]),
		TrustedRoots: d.trustedRoots(a["trusted_roots"]),
	}
	challenges, ok := d.challenges(a["challenges"])
	acme.Challenges = challenges
	at := a["http_address"]
	switch {
	case !ok:
		// The challenges are reported: whether http_address is needed is unknown.
	case slices.Contains(challenges, challengeHTTP):
		if at == nil {
			d.errorf(b.DefRange, nil, "Missing required argument",
				`acme uses the http-01 challenge but has no http_address. Add the address where its solver listens, e.g. http_address = ":80".`)
			break
		}
		acme.HTTPAddress = d.address(at, "", addrRule{listen: true, example: ":80"})
		if acme.HTTPAddress != "" && freePort(acme.HTTPAddress) {
			d.errorf(at.Expr.Range(), &at.Range, "Invalid port",
				fmt.Sprintf(`%q picks a free port, which the CA cannot know. The CA connects to port 80 of each domain: use ":80", or a port that port 80 is forwarded to, e.g. ":8080".`,
					acme.HTTPAddress))
			acme.HTTPAddress = ""
		}
	case at != nil:
		if _, set := d.value(at, ":80"); set {
			d.warnf(at.Expr.Range(), &at.Range, "Unused http_address",
				`challenges does not list "http-01", so no solver listens on http_address. Add "http-01" to challenges, or remove http_address.`)
		}
	}
	return decoded[*ACME]{value: acme, block: b, attrs: a}
}

// acmeCA returns the value of a, the https URL of an ACME directory, or "".
func (d *decoder) acmeCA(a *hcl.Attribute) string {
	s, ok := d.value(a, exampleCA)
	if !ok {
		return ""
	}
	u, err := url.Parse(s)
	switch {
	case err == nil && u.Scheme == "https" && u.Host != "" && u.User == nil:
		return s
	case err == nil && u.Scheme == "http":
		d.errorf(a.Expr.Range(), &a.Range, "Invalid ACME directory URL",
			fmt.Sprintf("%q is not an https URL: ACME servers are reached over HTTPS only (RFC 8555 section 6.1). Write %q.",
				s, "https"+strings.TrimPrefix(s, "http")))
	default:
		d.errorf(a.Expr.Range(), &a.Range, "Invalid ACME directory URL",
			fmt.Sprintf("%q is not an https URL. ca is the directory URL of the ACME CA, e.g. ca = %q (Let's Encrypt), "+
				"or %q (its staging CA, for trials).", s, exampleCA, "https://acme-staging-v02.api.letsencrypt.org/directory"))
	}
	return ""
}

// email returns the value of a, a plain email address, or "".
func (d *decoder) email(a *hcl.Attribute) string {
	s, ok := d.value(a, "ops@example.net")
	if !ok {
		return ""
	}
	if addr, err := mail.ParseAddress(s); err == nil && addr.Name == "" && addr.Address == s {
		return s
	}
	d.errorf(a.Expr.Range(), &a.Range, "Invalid email address",
		fmt.Sprintf(`%q is not an email address. email is the contact of the ACME account, written alone, e.g. email = "ops@example.net".`, s))
	return ""
}

// domains returns the value of a, a non-empty list of DNS names without
// duplicates, reporting its absence at the acme block b.
func (d *decoder) domains(b *hcl.Block, a *hcl.Attribute) []string {
	if a == nil {
		d.errorf(b.DefRange, nil, "Missing required argument",
			fmt.Sprintf("acme has no domains. Add the names to obtain certificates for, e.g. domains = %s.", exampleDomains))
		return nil
	}
	list, at, ok := d.list(a, exampleDomains)
	if ok && len(list) == 0 {
		d.errorf(a.Expr.Range(), &a.Range, "No domains",
			fmt.Sprintf("domains = [] names no domain to obtain a certificate for. List at least one, e.g. domains = %s.", exampleDomains))
		return nil
	}
	for i, name := range list {
		rng := at[i]
		if why := dnsName(name); why != "" {
			d.errorf(rng, &a.Range, "Invalid domain", fmt.Sprintf("%q is not a DNS name: %s.", name, why))
			ok = false
		} else if j := slices.IndexFunc(list[:i], func(s string) bool { return strings.EqualFold(s, name) }); j >= 0 {
			d.errorf(rng, &a.Range, "Duplicate domain",
				fmt.Sprintf("%q is already listed in domains (as %q). List each name once.", name, list[j]))
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return list
}

// dnsName returns why name is not a DNS name that ACME can issue a
// certificate for by tls-alpn-01 or http-01, or "".
func dnsName(name string) string {
	switch {
	case name == "":
		return "it is empty"
	case strings.HasPrefix(name, "*."):
		return "a wildcard certificate needs the dns-01 challenge, which Guard does not support. List each name"
	case net.ParseIP(strings.Trim(name, "[]")) != nil:
		return "it is an IP address. List the DNS names that clients connect to"
	case strings.Contains(name, "://") || strings.ContainsAny(name, "/:@"):
		return "write the name alone, without scheme, port or path, e.g. \"xmpp.example.net\""
	case strings.HasSuffix(name, "."):
		return fmt.Sprintf("write it without the final dot, %q", strings.TrimSuffix(name, "."))
	case len(name) > 253:
		return fmt.Sprintf("it has %d characters, and a DNS name at most 253", len(name))
	}
	for label := range strings.SplitSeq(name, ".") {
		switch {
		case label == "":
			return "it has an empty label (two dots in a row, or a dot first)"
		case len(label) > 63:
			return fmt.Sprintf("its label %q has %d characters, and a label at most 63", label, len(label))
		case strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-"):
			return fmt.Sprintf("its label %q starts or ends with a hyphen", label)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Sprintf("%q is not allowed: use letters, digits, hyphens and dots (an internationalized name in its xn-- form)", r)
			}
		}
	}
	return ""
}

// storage returns the value of a, a directory, or defaultACMEStorage.
func (d *decoder) storage(a *hcl.Attribute) string {
	s, ok := d.value(a, "/var/lib/guard/certmagic")
	switch {
	case !ok:
		return defaultACMEStorage
	case s == "":
		d.errorf(a.Expr.Range(), &a.Range, "Empty storage",
			fmt.Sprintf(`storage = "" names no directory. Name one, e.g. storage = "/var/lib/guard/certmagic", or leave it out for the default, %q.`,
				defaultACMEStorage))
		return defaultACMEStorage
	}
	if st, err := os.Stat(s); err == nil && !st.IsDir() {
		d.errorf(a.Expr.Range(), &a.Range, "Storage is not a directory",
			fmt.Sprintf("storage %q exists and is not a directory. Name a directory, which Guard creates if it does not exist.", s))
		return defaultACMEStorage
	}
	return s
}

// trustedRoots returns the value of a, a PEM file holding at least one
// certificate, or "".
func (d *decoder) trustedRoots(a *hcl.Attribute) string {
	return d.roots(a, "pebble.minica.pem", "trusted_roots file", "the ACME server's HTTPS endpoint")
}

// roots returns the value of a, a PEM file of root certificates holding at
// least one certificate, or "". example is a path to show, what names the
// file in summaries ("trusted_roots file"), and of completes "It must hold
// the root certificates of".
func (d *decoder) roots(a *hcl.Attribute, example, what, of string) string {
	s, ok := d.value(a, example)
	if !ok || s == "" {
		return ""
	}
	b, err := readFile(s)
	if err != nil {
		d.errorf(a.Expr.Range(), &a.Range, "Unreadable "+what,
			fmt.Sprintf("Guard cannot read %s %s", a.Name, describeFileError(s, err)))
		return ""
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		d.errorf(a.Expr.Range(), &a.Range, "No certificate in "+a.Name,
			fmt.Sprintf(`%s %q holds no PEM certificate that parses (a "-----BEGIN CERTIFICATE-----" block). `+
				`It must hold the root certificates of %s, or be "" for the system roots only.`, a.Name, s, of))
		return ""
	}
	return s
}

// challenges returns the value of a, a non-empty subset of acmeChallenges,
// and whether it is valid; the default for an absent a.
func (d *decoder) challenges(a *hcl.Attribute) ([]string, bool) {
	def := []string{defaultChallenge}
	if a == nil {
		return def, true
	}
	list, at, ok := d.list(a, `["tls-alpn-01"]`)
	if !ok && !d.reported(a) {
		return def, true // null takes the default
	}
	if ok && len(list) == 0 {
		d.errorf(a.Expr.Range(), &a.Range, "No challenges",
			`challenges = [] leaves the CA no way to check that Guard serves the domains. Use "tls-alpn-01", "http-01" or both, `+
				`e.g. challenges = ["tls-alpn-01"], or leave it out for the default.`)
		return def, false
	}
	for i, c := range list {
		rng := at[i]
		switch {
		case c == "dns-01":
			d.errorf(rng, &a.Range, "Unsupported challenge",
				`Guard does not support the dns-01 challenge. Use "tls-alpn-01", "http-01" or both.`)
			ok = false
		case !slices.Contains(acmeChallenges, c):
			detail := fmt.Sprintf("%q is not an ACME challenge that Guard answers.", c)
			if sug := suggest(c, acmeChallenges); sug != "" {
				detail += fmt.Sprintf(" Did you mean %q?", sug)
			}
			d.errorf(rng, &a.Range, "Invalid challenge", detail+` Use "tls-alpn-01", "http-01" or both.`)
			ok = false
		case slices.Contains(list[:i], c):
			d.errorf(rng, &a.Range, "Duplicate challenge", fmt.Sprintf("%q is already listed in challenges. List each once.", c))
			ok = false
		}
	}
	if !ok {
		return def, false
	}
	return list, true
}

// exampleServerName is the server_name shown in messages.
const exampleServerName = "openfire.internal"

// backendTLS decodes the tls block b of backend be, whose address or nodes
// are decoded already ("" when invalid). The server name defaults to the
// host of the address, or of the first node.
func (d *decoder) backendTLS(b *hcl.Block, be Backend) *BackendTLS {
	a := d.content(b.Body, backendTLSSchema, "A backend's tls block").Attributes
	address := be.Address
	if address == "" && len(be.Nodes) > 0 {
		address = be.Nodes[0].Address
	}
	t := &BackendTLS{
		ServerName:         d.serverName(a["server_name"], address),
		CAFile:             d.roots(a["ca_file"], "/etc/guard/backend-ca.pem", "CA file", "the CA that issued the backend's certificate"),
		InsecureSkipVerify: d.boolean(a["insecure_skip_verify"], false),
		MinVersion:         d.oneOf(a["min_version"], defaultMinVersion, "TLS version", tlsVersions...),
	}
	if !t.InsecureSkipVerify {
		return t
	}
	at := a["insecure_skip_verify"]
	d.warnf(at.Expr.Range(), &at.Range, "Backend certificate not verified",
		fmt.Sprintf("With insecure_skip_verify = true Guard accepts any certificate from backend %q, so whoever is on the network path "+
			"can read and change its streams, passwords included. Use it for tests only; for a backend with a certificate of a private CA, "+
			"set ca_file to the CA's root certificate instead.", be.Name))
	if ca := a["ca_file"]; t.CAFile != "" {
		d.warnf(ca.Expr.Range(), &ca.Range, "Unused ca_file",
			fmt.Sprintf("insecure_skip_verify = true turns verification off, so Guard never uses ca_file %q. "+
				"Remove insecure_skip_verify for Guard to verify the backend with it, or remove ca_file.", t.CAFile))
		t.CAFile = ""
	}
	return t
}

// serverName returns the value of a, the name Guard verifies in a
// backend's certificate, or its default: the host of address, the
// backend's address ("" when it is invalid), an IP address without its
// IPv6 zone.
func (d *decoder) serverName(a *hcl.Attribute, address string) string {
	def := ""
	if host, _, err := net.SplitHostPort(address); err == nil {
		def = host
		if _, err := netip.ParseAddr(host); err == nil {
			def, _, _ = strings.Cut(host, "%")
		}
	}
	s, ok := d.value(a, exampleServerName)
	if !ok {
		return def
	}
	if s == "" {
		or := "leave it out for the host of address"
		if def != "" {
			or = fmt.Sprintf("leave it out for the default, the host of address (%q)", def)
		}
		d.errorf(a.Expr.Range(), &a.Range, "Empty server_name",
			fmt.Sprintf(`server_name = "" names no server to verify. Write the name in the backend's certificate, e.g. server_name = %q, or %s.`,
				exampleServerName, or))
		return def
	}
	if ip, err := netip.ParseAddr(s); err == nil && ip.Zone() == "" {
		return s
	}
	var why string
	inner := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	ip, ipErr := netip.ParseAddr(inner)
	switch {
	case ipErr == nil && ip.Zone() != "":
		why = fmt.Sprintf("an IP address is written without its zone, %q", ip.WithZone("").String())
	case ipErr == nil:
		why = fmt.Sprintf("write an IP address without brackets, %q", inner)
	case strings.Contains(s, "*"):
		why = "it is a wildcard. Write the name of the one server Guard connects to (a wildcard certificate matches it)"
	default:
		why = dnsName(s)
	}
	if why == "" {
		return s
	}
	d.errorf(a.Expr.Range(), &a.Range, "Invalid server_name",
		fmt.Sprintf("%q is not a DNS name or an IP address: %s.", s, why))
	return def
}

// certificates checks, across blocks, that every listener that terminates
// TLS has a certificate, from files or from the acme block, and warns about
// an acme block that no listener uses.
func (d *decoder) certificates(listeners []decoded[Listener], tlsBlocks []decoded[TLS], acme decoded[*ACME]) {
	users := 0
	// Whether the acme block is unused is known only when every mode is.
	allKnown := len(listeners) > 0
	for i, l := range listeners {
		t := tlsBlocks[i]
		if t.block == nil {
			continue
		}
		if at := t.attrs["mode"]; at != nil && d.reported(at) {
			allKnown = false
			continue
		}
		if !t.value.Mode.Terminates() || t.value.CertFile != "" || t.value.KeyFile != "" {
			continue
		}
		users++
		if acme.value == nil {
			d.errorf(t.block.DefRange, nil, "No certificate",
				fmt.Sprintf("listener %q has tls mode %q and no certificate: set cert_file and key_file, or add an acme block.",
					l.value.Name, t.value.Mode))
		}
	}
	if acme.value != nil && users == 0 && allKnown {
		d.warnf(acme.block.DefRange, nil, "Unused acme block",
			`No listener takes its certificate from the acme block: only a listener with tls mode "starttls" or "direct" and no cert_file would, `+
				"so its certificates would never be served. Remove the acme block, or use it in such a listener.")
	}
}
