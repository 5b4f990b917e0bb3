package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/guard-xmpp/guard/admin"
	"github.com/guard-xmpp/guard/config"
	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/proxy"
	"github.com/guard-xmpp/guard/tlsconf"
)

// guard is the running process: the proxy, the admin endpoint, and the
// configuration they were last given.
type guard struct {
	path   string // configuration file; "" in quick-start mode
	logger hclog.Logger
	srv    *proxy.Server

	mu  sync.Mutex // serialises reloads
	cfg atomic.Pointer[config.Config]

	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge
	draining   atomic.Bool
	drainReq   chan string // the cause of a drain requested on the admin port

	tlsMu sync.Mutex
	tls   map[string]*tlsconf.Manager // by certificate source and TLS settings
	// tlsInUse are the keys of tls the running configuration uses.
	tlsInUse map[string]bool
}

// run serves cfg until SIGTERM or SIGINT (or a drain requested on the admin
// port), then drains; SIGHUP reloads the file at path.
func run(path string, cfg *config.Config, logger hclog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g := &guard{
		path:   path,
		logger: logger,
		srv:    proxy.New(proxy.Options{Logger: logger.Named("proxy"), Metrics: proxy.NewMetrics(reg), ReturnMemory: true}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "guard_config_last_reload_successful",
			Help: "1 if the last configuration reload succeeded (or none was tried), 0 if it was rejected.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "guard_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load.",
		}),
		drainReq: make(chan string, 1),
		tls:      make(map[string]*tlsconf.Manager),
	}
	defer g.closeTLS()
	reg.MustRegister(g.reloadOK, g.reloadTime)
	if err := g.apply(cfg); err != nil {
		g.srv.Close()
		return err
	}
	g.reloadOK.Set(1)
	g.reloadTime.SetToCurrentTime()

	var adm *admin.Server
	if cfg.Admin.Address != "" {
		var closeTLS func()
		var err error
		if adm, closeTLS, err = g.startAdmin(cfg.Admin, reg); err != nil {
			g.srv.Close()
			return err
		}
		defer closeTLS()
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	logger.Info("guard started", "version", versionString(), "listeners", len(cfg.Listeners))
	var cause string
	for cause == "" {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				g.reload()
				continue
			}
			cause = sig.String()
		case cause = <-g.drainReq:
		}
	}
	g.drain(cause, sigs)
	if adm != nil {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		adm.Shutdown(actx)
		acancel()
	}
	logger.Info("stopped")
	return nil
}

// startAdmin serves the admin endpoint a describes. closeTLS closes the
// certificate manager of its tls block, once the endpoint is shut down.
func (g *guard) startAdmin(a config.Admin, reg *prometheus.Registry) (adm *admin.Server, closeTLS func(), err error) {
	closeTLS = func() {}
	var admTLS *tls.Config
	if a.CertFile != "" {
		m, err := tlsconf.New(context.Background(), tlsconf.Options{Logger: g.logger.Named("admin-tls"),
			CertFile: a.CertFile, KeyFile: a.KeyFile})
		if err != nil {
			return nil, nil, fmt.Errorf("admin: TLS: %w", err)
		}
		closeTLS, admTLS = func() { m.Close() }, m.TLSConfig()
	}
	adm = admin.New(admin.Options{
		TLS:      admTLS,
		Logger:   g.logger.Named("admin"),
		Gatherer: reg,
		Ready:    func() bool { return !g.draining.Load() },
		Drain:    g.requestDrain,
		Reload:   g.reload,
		Backends: func() any { return g.srv.Backends() },
		Status: func() proxy.Status {
			st := g.srv.Status()
			st.Draining = st.Draining || g.draining.Load()
			return st
		},
		// Read from admin.token_file at start and on every reload.
		Token: func() string { return g.cfg.Load().Admin.Token },
	})
	if _, err := adm.Listen(a.Address); err != nil {
		closeTLS()
		return nil, nil, fmt.Errorf("admin: %w", err)
	}
	return adm, closeTLS, nil
}

// apply hands cfg to the proxy.
func (g *guard) apply(cfg *config.Config) error {
	pol, err := policy.New(cfg.Policy)
	if err != nil {
		return err // config validated it; this is a bug if it happens
	}
	var ls []proxy.ListenerConfig
	used := map[string]bool{} // the certificate managers cfg uses
	for _, l := range cfg.Listeners {
		lc := listenerConfig(cfg, l, pol)
		if err := withBackendTLS(cfg, &lc); err != nil {
			return err
		}
		if lc.TLS.Mode.Terminates() {
			tc, err := g.tlsConfig(cfg, l, used)
			if err != nil {
				g.pruneTLS(nil)
				return fmt.Errorf("listener %q: TLS: %w", l.Name, err)
			}
			lc.TLS.Config = tc
		}
		ls = append(ls, lc)
	}
	if err := g.srv.Apply(ls); err != nil {
		g.pruneTLS(nil)
		return err
	}
	g.pruneTLS(used)
	g.cfg.Store(cfg)
	return nil
}

// pruneTLS closes the certificate managers that the running configuration
// no longer uses (its renewals and file checks stop): after a reload, those
// of the old settings; after a rejected one, those it created. used is the
// set of the configuration just applied; nil keeps the running one's.
// Sessions that started under an old manager keep their connections; the
// certificates it cached stay readable.
func (g *guard) pruneTLS(used map[string]bool) {
	g.tlsMu.Lock()
	defer g.tlsMu.Unlock()
	if used != nil {
		g.tlsInUse = used
	}
	for key, m := range g.tls {
		if !g.tlsInUse[key] {
			m.Close()
			delete(g.tls, key)
		}
	}
}

// reload reads the configuration file again and applies it. An invalid file
// keeps the running configuration; its diagnostics go to the log and to the
// caller.
func (g *guard) reload() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.path == "" {
		err := errors.New("started with --listen/--backend: there is no configuration file to reload")
		g.logger.Warn("reload refused", "error", err)
		return err
	}
	cfg, err := config.LoadFile(g.path)
	if err == nil {
		old := g.cfg.Load()
		if cfg.Admin.Address != old.Admin.Address {
			g.logger.Warn("the admin address changes only with a restart", "running", old.Admin.Address, "file", cfg.Admin.Address)
		}
		if cfg.Admin.CertFile != old.Admin.CertFile || cfg.Admin.KeyFile != old.Admin.KeyFile {
			g.logger.Warn("the admin endpoint's tls block changes only with a restart (the files it names are picked up when they change)",
				"running", old.Admin.CertFile, "file", cfg.Admin.CertFile)
		}
		if cfg.Admin.Token != old.Admin.Token {
			g.logger.Info("the admin token changes", "token_file", cfg.Admin.TokenFile)
		}
		if lvl := hclog.LevelFromString(cfg.Log.Level); lvl != hclog.NoLevel {
			g.logger.SetLevel(lvl)
		}
		err = g.apply(cfg)
	}
	if err != nil {
		var buf bytes.Buffer
		config.WriteDiagnostics(&buf, err, 0, false)
		g.logger.Error("reload rejected; the running configuration stays", "file", g.path, "diagnostics", buf.String())
		g.reloadOK.Set(0)
		return fmt.Errorf("%s", buf.String())
	}
	if w := cfg.Warnings(); w != nil {
		var buf bytes.Buffer
		config.WriteDiagnostics(&buf, w, 0, false)
		g.logger.Warn("configuration warnings", "diagnostics", buf.String())
	}
	g.reloadOK.Set(1)
	g.reloadTime.SetToCurrentTime()
	g.logger.Info("configuration reloaded", "file", g.path, "listeners", len(cfg.Listeners))
	return nil
}

// requestDrain starts the drain from the admin port (a Kubernetes preStop
// hook). It reports whether this call started it.
func (g *guard) requestDrain() bool {
	select {
	case g.drainReq <- "admin request":
		return true
	default:
		return false
	}
}

// drain runs the shutdown timeline: readiness off at once, accepting for
// accept_delay, then the open streams ended spread over drain_timeout, all
// bounded by deadline. A second signal cuts it short.
func (g *guard) drain(cause string, sigs <-chan os.Signal) {
	g.draining.Store(true)
	sh := g.cfg.Load().Shutdown
	g.logger.Info("draining", "cause", cause, "open", g.srv.Open(),
		"accept_delay", sh.AcceptDelay, "drain_timeout", sh.DrainTimeout, "deadline", sh.Deadline)
	ctx, cancel := context.WithTimeout(context.Background(), sh.Deadline)
	defer cancel()
	go func() {
		select {
		case <-sigs:
			g.logger.Warn("second signal: closing every stream now")
			cancel()
		case <-ctx.Done():
		}
	}()
	if sh.AcceptDelay > 0 {
		t := time.NewTimer(sh.AcceptDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	if err := g.srv.Drain(ctx, sh.DrainTimeout); err != nil {
		g.logger.Warn("drain cut short", "error", err)
	}
}

// tlsConfig returns the server TLS configuration of a listener, from a
// certmagic manager shared by listeners with the same certificate source
// and TLS settings (so they share session-ticket keys too).
func (g *guard) tlsConfig(cfg *config.Config, l config.Listener, used map[string]bool) (*tls.Config, error) {
	o := tlsconf.Options{
		Logger:     g.logger.Named("tls"),
		CertFile:   l.TLS.CertFile,
		KeyFile:    l.TLS.KeyFile,
		NextProtos: l.TLS.ALPN,
	}
	if l.TLS.MinVersion == "1.3" {
		o.MinVersion = tls.VersionTLS13
	}
	if l.TLS.CertFile == "" && cfg.ACME != nil {
		a := cfg.ACME
		o.Storage = a.Storage
		o.ACME = &tlsconf.ACMEOptions{
			CA:               a.CA,
			Email:            a.Email,
			Domains:          a.Domains,
			TrustedRootsFile: a.TrustedRoots,
			DisableTLSALPN:   !slices.Contains(a.Challenges, "tls-alpn-01"),
		}
		if slices.Contains(a.Challenges, "http-01") {
			host, port, err := net.SplitHostPort(a.HTTPAddress)
			if err != nil {
				return nil, err
			}
			o.ACME.ListenHost = host
			o.ACME.HTTPChallengePort, _ = strconv.Atoi(port)
		}
	}
	key := fmt.Sprintf("%q %q %v %d %+v", o.CertFile, o.KeyFile, o.NextProtos, o.MinVersion, o.ACME)
	used[key] = true
	g.tlsMu.Lock()
	defer g.tlsMu.Unlock()
	if m := g.tls[key]; m != nil {
		return m.TLSConfig(), nil
	}
	// ACME obtains certificates before Guard serves; bound the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := tlsconf.New(ctx, o)
	if err != nil {
		return nil, err
	}
	g.tls[key] = m
	return m.TLSConfig(), nil
}

func (g *guard) closeTLS() {
	g.tlsMu.Lock()
	defer g.tlsMu.Unlock()
	for _, m := range g.tls {
		m.Close()
	}
}

// withBackendTLS adds the TLS configuration of every backend lc uses.
func withBackendTLS(cfg *config.Config, lc *proxy.ListenerConfig) error {
	set := func(pb *proxy.Backend) error {
		b, ok := cfg.Backend(pb.Name)
		if !ok || b.TLS == nil {
			return nil
		}
		tc, err := backendTLSConfig(b.TLS)
		if err != nil {
			return fmt.Errorf("backend %q: TLS: %w", b.Name, err)
		}
		pb.TLS = tc
		return nil
	}
	if err := set(&lc.Backend); err != nil {
		return err
	}
	for d, b := range lc.Routes {
		if err := set(&b); err != nil {
			return err
		}
		lc.Routes[d] = b
	}
	return nil
}

// backendTLSConfig is the client TLS configuration toward a backend.
func backendTLSConfig(t *config.BackendTLS) (*tls.Config, error) {
	c := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if t.MinVersion == "1.3" {
		c.MinVersion = tls.VersionTLS13
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", t.CAFile)
		}
	}
	return c, nil
}

// listenerConfig builds one configured listener for the proxy: its settings
// as decoded, with its backends resolved by name, the connection log and
// the policy (TLS configurations are added by apply).
func listenerConfig(cfg *config.Config, l config.Listener, pol *policy.Policy) proxy.ListenerConfig {
	lc := proxy.ListenerConfig{
		Name:          l.Name,
		Address:       l.Address,
		Timeouts:      l.Timeouts,
		XMLLimits:     l.Limits.XMLLimits,
		Limits:        l.Limits.AddrLimits,
		ConnLog:       cfg.Log.Connections,
		Policy:        pol,
		TLS:           proxy.TLS{Mode: l.TLS.Mode},
		ProxyProtocol: l.ProxyProtocol,
		WebSocket:     l.WebSocket,
		Stream:        l.Stream,
	}
	if b, ok := cfg.Backend(l.Backend); ok {
		lc.Backend = b.Backend
	}
	if len(l.Routes) > 0 {
		lc.Routes = make(map[string]proxy.Backend, len(l.Routes))
		for _, r := range l.Routes {
			b, _ := cfg.Backend(r.Backend)
			lc.Routes[r.Domain] = b.Backend
		}
	}
	return lc
}
