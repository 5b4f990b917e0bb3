// Package tlsconf builds Guard's server TLS configurations from certmagic: certificate files that are
// picked up again when they change, or certificates obtained by ACME.
//
// A [Manager] owns one certmagic cache and configuration. Its [Manager.TLSConfig] is the one
// *tls.Config that Guard's TLS listeners (STARTTLS and Direct TLS, XEP-0368) hand to
// tls.Server: certificates come from certmagic's GetCertificate, TLS 1.2 is the floor, TLS 1.2
// suites are ECDHE with AEAD only, session tickets are on, and OCSP responses are stapled the way
// certmagic staples them (fetched in the background and kept in Storage). A client whose
// server name matches no certificate, or that sends none, still gets one (as crypto/tls serves
// Certificates[0]) and judges the mismatch itself.
//
// Certificates come from exactly one of two sources:
//
//   - Files: Options.CertFile and Options.KeyFile are loaded into certmagic's cache as an
//     unmanaged certificate. A goroutine stats both files every Options.ReloadInterval
//     (following symlinks, so a Kubernetes secret's ..data swap is seen) and, when a file's
//     identity, size or modification time changes and its content differs, loads the pair again
//     and swaps it into the cache. A pair that does not load (for example a certificate written
//     before its key) is logged once and the previous certificate stays in service until the
//     files change again.
//   - ACME: certmagic obtains and renews certificates for ACMEOptions.Domains. [New] manages
//     them synchronously (certmagic's ManageSync): it returns only when every domain has a
//     certificate, loaded from Storage or obtained from the CA, so a Guard that is up can
//     serve. Renewals then run in certmagic's background maintenance.
package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/hashicorp/go-hclog"
	"github.com/mholt/acmez/v3"
	"go.uber.org/zap"
)

// ACMETLSALPNProtocol is the ALPN protocol of the tls-alpn-01 challenge (RFC 8737). A connection
// that negotiated it is an ACME validation, not a client: see [IsACMEChallenge].
const ACMETLSALPNProtocol = acmez.ACMETLS1Protocol

// DefaultReloadInterval is how often certificate files are checked for changes when
// Options.ReloadInterval is zero.
const DefaultReloadInterval = time.Second

// Options configures a [Manager]. Exactly one of CertFile/KeyFile and ACME must be set.
type Options struct {
	// Logger receives Guard's own messages and, through a zap adapter, certmagic's.
	// Default: nil discards everything.
	Logger hclog.Logger

	// CertFile and KeyFile are PEM files: the certificate chain (leaf first) and its private key.
	// Both or neither. They are checked for changes every ReloadInterval.
	CertFile, KeyFile string

	// ReloadInterval is how often CertFile and KeyFile are stat'ed for changes (two stat calls;
	// the files are read only when a stat differs). Default: 0 means DefaultReloadInterval.
	ReloadInterval time.Duration

	// ACME, if not nil, obtains and renews certificates from an ACME CA.
	ACME *ACMEOptions

	// Storage is the directory of certmagic's file storage: ACME accounts, certificates and
	// keys, locks, pending challenges, and OCSP staples. Replicas that share it share the
	// account and the certificates (one orders each, under a lock in Storage; the others load
	// it), and TLSConfig answers a tls-alpn-01 validation of a challenge another replica started,
	// from Storage. http-01 is answered only by the process whose challenge it is: its solver
	// listens only while that challenge is pending. Default: "" means certmagic's default
	// ($XDG_DATA_HOME/certmagic or $HOME/.local/share/certmagic).
	Storage string

	// MinVersion is the lowest TLS version accepted: tls.VersionTLS12 or tls.VersionTLS13.
	// Default: 0 means tls.VersionTLS12.
	MinVersion uint16

	// NextProtos are the ALPN protocols offered, in order of preference, for example
	// []string{"xmpp-client"} on a Direct TLS listener (XEP-0368). A client that offers ALPN
	// protocols none of which is listed is refused by crypto/tls. "acme-tls/1" must not be
	// listed: it is answered only to ACME validations, whatever NextProtos says.
	// Default: nil means no ALPN.
	NextProtos []string
}

// ACMEOptions configures certificates obtained by ACME.
type ACMEOptions struct {
	// CA is the ACME directory URL. certmagic's test CA, used for retries, is set to the same
	// URL so that retries never go to a public staging CA.
	// Default: "" means Let's Encrypt's production directory.
	CA string

	// Email is the ACME account's contact address. Required: without it certmagic would prompt
	// on standard input. Setting ACME means agreeing to the CA's terms of service.
	Email string

	// Domains are the names to obtain certificates for, one certificate each. Required.
	Domains []string

	// TrustedRootsFile is a PEM file of root certificates trusted for the CA's own HTTPS
	// endpoint (a private CA or Pebble). Default: "" means the system roots.
	TrustedRootsFile string

	// ListenHost is the host certmagic's own challenge servers bind: the http-01 server, and
	// the tls-alpn-01 server while no listener of Guard holds the port yet.
	// Default: "" means all interfaces.
	ListenHost string

	// HTTPChallengePort is the port certmagic's http-01 server listens on while a challenge is
	// pending; the CA connects to port 80, so anything else needs a forward.
	// Default: 0 means the http-01 challenge is not used.
	HTTPChallengePort int

	// DisableTLSALPN turns the tls-alpn-01 challenge off. Default: false, the challenge is used.
	DisableTLSALPN bool

	// TLSALPNPort is the port of the tls-alpn-01 challenge. The CA connects to port 443, so it
	// is 443 or a port forwarded from it. When a Guard listener with TLSConfig already holds
	// the port, that listener answers the challenge (its connections end after the handshake,
	// see IsACMEChallenge); otherwise certmagic listens on ListenHost:TLSALPNPort itself while
	// the challenge is pending, as it does during New. Default: 0 means 443.
	TLSALPNPort int
}

// Manager serves certificates from certmagic. It is safe for concurrent use.
type Manager struct {
	log   hclog.Logger
	cache *certmagic.Cache
	cfg   *certmagic.Config
	tls   *tls.Config

	files *fileSource // nil unless serving files

	stop      context.CancelFunc
	done      sync.WaitGroup
	closeOnce sync.Once
}

// tls12CipherSuites are the TLS 1.2 suites Guard accepts: ECDHE key exchange with an AEAD.
// TLS 1.3 suites are not configurable in crypto/tls and are all AEAD.
var tls12CipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// New builds a Manager and loads its first certificates: it reads the files, or, for ACME,
// loads or obtains a certificate for every domain before it returns (certmagic's ManageSync:
// one attempt per domain, no retries; ctx bounds it). An error leaves nothing running.
func New(ctx context.Context, o Options) (*Manager, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	zl := newZapLogger(log)

	m := &Manager{log: log}
	var cfgp atomic.Pointer[certmagic.Config]
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) {
			if c := cfgp.Load(); c != nil {
				return c, nil
			}
			return nil, errors.New("tlsconf: certmagic configuration not ready")
		},
		Logger: zl,
	})
	var storage certmagic.Storage
	if o.Storage != "" {
		storage = &certmagic.FileStorage{Path: o.Storage}
	}
	m.cfg = certmagic.New(m.cache, certmagic.Config{
		Storage:       storage,
		Logger:        zl,
		CertSelection: anyCertificate{},
		// A non-nil empty list: serving files must never reach certmagic's default issuer.
		Issuers: []certmagic.Issuer{},
	})
	cfgp.Store(m.cfg)

	fail := func(err error) (*Manager, error) {
		m.cache.Stop()
		return nil, err
	}

	acmeTLSALPN := false
	if a := o.ACME; a != nil {
		iss, err := newACMEIssuer(m.cfg, a, zl)
		if err != nil {
			return fail(err)
		}
		m.cfg.Issuers = []certmagic.Issuer{iss}
		if err := m.cfg.ManageSync(ctx, a.Domains); err != nil {
			return fail(fmt.Errorf("tlsconf: obtaining certificates for %v from %s: %w", a.Domains, iss.CA, err))
		}
		acmeTLSALPN = !a.DisableTLSALPN
		log.Info("ACME certificates ready", "domains", a.Domains, "ca", iss.CA)
	} else {
		interval := o.ReloadInterval
		if interval <= 0 {
			interval = DefaultReloadInterval
		}
		m.files = &fileSource{cfg: m.cfg, cache: m.cache, certFile: o.CertFile, keyFile: o.KeyFile, log: log.Named("files")}
		if err := m.files.load(ctx); err != nil {
			return fail(err)
		}
		watchCtx, stop := context.WithCancel(context.Background())
		m.stop = stop
		m.done.Go(func() { m.files.watch(watchCtx, interval) })
	}

	m.tls = newTLSConfig(m.cfg, o.minVersion(), o.NextProtos, acmeTLSALPN)
	return m, nil
}

// newTLSConfig is the server configuration every listener shares. One *tls.Config (not one per
// connection) keeps one set of session ticket keys, so a ticket issued on one connection
// resumes on the next.
func newTLSConfig(cfg *certmagic.Config, minVersion uint16, nextProtos []string, acmeTLSALPN bool) *tls.Config {
	c := &tls.Config{
		GetCertificate: cfg.GetCertificate,
		MinVersion:     minVersion,
		CipherSuites:   tls12CipherSuites,
		NextProtos:     slices.Clone(nextProtos),
	}
	if acmeTLSALPN {
		// RFC 8737: the validation offers only "acme-tls/1" and the server must select it.
		// Answering it through a per-hello configuration keeps "acme-tls/1" out of what
		// ordinary clients are offered; ticket keys stay those of c (crypto/tls uses the
		// original config's keys when the returned one sets none).
		challenge := c.Clone()
		challenge.NextProtos = []string{ACMETLSALPNProtocol}
		c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == ACMETLSALPNProtocol {
				return challenge, nil
			}
			return nil, nil
		}
	}
	return c
}

// TLSConfig returns the server configuration to hand to tls.Server or tls.NewListener. It is
// the same *tls.Config on every call, shared by every listener so that session tickets resume
// across connections; do not modify it. A listener that needs other settings (say other
// NextProtos) uses its own Manager, or a Clone, whose session ticket keys then rotate apart.
func (m *Manager) TLSConfig() *tls.Config { return m.tls }

// IsACMEChallenge reports whether a completed handshake was a tls-alpn-01 validation by an ACME
// CA. Such a connection carries no stream: close it right after the handshake.
func IsACMEChallenge(cs tls.ConnectionState) bool {
	return cs.NegotiatedProtocol == ACMETLSALPNProtocol
}

// Close stops the file watcher and certmagic's maintenance (renewals, OCSP updates). Handshakes
// already in progress may still complete. Close is idempotent and always returns nil.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		if m.stop != nil {
			m.stop()
		}
		m.done.Wait()
		m.cache.Stop()
	})
	return nil
}

func (o *Options) minVersion() uint16 {
	if o.MinVersion == 0 {
		return tls.VersionTLS12
	}
	return o.MinVersion
}

func (o *Options) validate() error {
	files := o.CertFile != "" || o.KeyFile != ""
	switch {
	case files && o.ACME != nil:
		return errors.New("tlsconf: certificate files and ACME are exclusive")
	case !files && o.ACME == nil:
		return errors.New("tlsconf: neither certificate files nor ACME configured")
	case files && (o.CertFile == "" || o.KeyFile == ""):
		return errors.New("tlsconf: certificate file and key file go together")
	}
	if v := o.MinVersion; v != 0 && v != tls.VersionTLS12 && v != tls.VersionTLS13 {
		return fmt.Errorf("tlsconf: minimum TLS version %#04x: want TLS 1.2 (0x0303) or 1.3 (0x0304)", v)
	}
	if slices.Contains(o.NextProtos, ACMETLSALPNProtocol) {
		return fmt.Errorf("tlsconf: NextProtos must not list %q", ACMETLSALPNProtocol)
	}
	if a := o.ACME; a != nil {
		if a.Email == "" {
			return errors.New("tlsconf: ACME needs an email address")
		}
		if len(a.Domains) == 0 || slices.Contains(a.Domains, "") {
			return errors.New("tlsconf: ACME needs domains, none empty")
		}
		if a.HTTPChallengePort == 0 && a.DisableTLSALPN {
			return errors.New("tlsconf: ACME has no challenge left: http-01 has no port and tls-alpn-01 is disabled")
		}
	}
	return nil
}

func newACMEIssuer(cfg *certmagic.Config, a *ACMEOptions, zl *zap.Logger) (*certmagic.ACMEIssuer, error) {
	ca := a.CA
	if ca == "" {
		ca = certmagic.LetsEncryptProductionCA
	}
	var roots *x509.CertPool
	if a.TrustedRootsFile != "" {
		pem, err := os.ReadFile(a.TrustedRootsFile)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: ACME trusted roots: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tlsconf: ACME trusted roots: no PEM certificate in %s", a.TrustedRootsFile)
		}
	}
	return certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
		CA:                      ca,
		TestCA:                  ca, // else retries may go to a public staging CA
		Email:                   a.Email,
		Agreed:                  true,
		DisableHTTPChallenge:    a.HTTPChallengePort == 0,
		DisableTLSALPNChallenge: a.DisableTLSALPN,
		ListenHost:              a.ListenHost,
		AltHTTPPort:             a.HTTPChallengePort,
		AltTLSALPNPort:          a.TLSALPNPort,
		TrustedRoots:            roots,
		Logger:                  zl,
	}), nil
}

// anyCertificate lets certmagic choose among all cached certificates when none matches the
// client's server name (or it sent none), as crypto/tls serves Certificates[0]: a client then
// sees a name mismatch it can report, instead of a handshake failure it cannot explain.
type anyCertificate struct{}

func (anyCertificate) SelectCertificate(hello *tls.ClientHelloInfo, choices []certmagic.Certificate) (certmagic.Certificate, error) {
	return certmagic.DefaultCertificateSelector(hello, choices)
}
