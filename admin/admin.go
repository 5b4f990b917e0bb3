// Package admin serves Guard's health, readiness and metrics endpoints over HTTP.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/guard-xmpp/guard/proxy"
)

// Options carries what the admin server needs from its owner.
type Options struct {
	Logger   hclog.Logger        // required
	Gatherer prometheus.Gatherer // the one registry of the process
	Ready    func() bool         // false while Guard drains or before it listens
	// Drain starts the shutdown drain (as SIGTERM does) and reports
	// whether this call started it; nil disables the endpoint.
	Drain func() bool
	// Reload reloads the configuration file; its error (diagnostics) is
	// returned to the caller. Nil disables the endpoint.
	Reload func() error
	// Backends returns the backend pools' state, served as JSON on
	// GET /backends. Nil disables the endpoint.
	Backends func() any
	// Status returns the snapshot the status page shows (GET / and
	// GET /status, HTML; GET /status.json). Nil disables the page.
	Status func() proxy.Status
	// Token returns the bearer token that POST /-/drain and POST /-/reload
	// require (Authorization: Bearer TOKEN), asked on every such request so
	// that a reload can change it; "" (or a nil Token) requires none. The
	// read-only endpoints never require it.
	Token func() string
	// TLS, if not nil, makes the endpoint HTTPS.
	TLS *tls.Config
}

// Server is the admin HTTP endpoint:
//
//	GET /healthz  200 while the process runs (liveness; never depends on a backend)
//	GET /readyz   200 when Guard takes new connections, 503 while it drains
//	GET /metrics  Prometheus text format
//	GET /backends  the backend pools: nodes, health, streams (JSON)
//	GET / and GET /status  the live status page (HTML); GET /status.json its data
//	POST /-/drain  start the drain (202)
//	POST /-/reload reload the configuration file (200, or 400 with the diagnostics)
//
// The two endpoints that change Guard's state take POST only: any other
// method gets 405 with Allow: POST and changes nothing, so that a link or
// an image on a web page that an operator opens cannot drain Guard. A POST
// that a browser marks as cross-origin (Sec-Fetch-Site, or an Origin that
// is not the Host), such as a form another page submits, gets 403; clients
// that are not browsers send neither header and pass. With a token
// (Options.Token), they also require it: a request without it, or with
// another, gets 401 with WWW-Authenticate: Bearer and changes nothing.
type Server struct {
	opts Options
	http *http.Server
	csrf *http.CrossOriginProtection
}

// New returns an admin server; call Listen to start it.
func New(opts Options) *Server {
	s := &Server{opts: opts, csrf: http.NewCrossOriginProtection()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if opts.Ready != nil && !opts.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("draining\n"))
			return
		}
		w.Write([]byte("ready\n"))
	})
	if opts.Drain != nil {
		drain := func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusAccepted)
			if opts.Drain() {
				w.Write([]byte("draining\n"))
				return
			}
			w.Write([]byte("already draining\n"))
		}
		mux.HandleFunc("/-/drain", s.stateChanging(drain))
	}
	if opts.Reload != nil {
		mux.HandleFunc("/-/reload", s.stateChanging(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if err := opts.Reload(); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(err.Error()))
				return
			}
			w.Write([]byte("reloaded\n"))
		}))
	}
	if opts.Backends != nil {
		mux.HandleFunc("GET /backends", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			enc.Encode(opts.Backends())
		})
	}
	if opts.Status != nil {
		statusHandlers(mux, opts.Status)
	}
	if opts.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
			ErrorLog: opts.Logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		}))
	}
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          opts.Logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	return s
}

// stateChanging wraps the handler of an endpoint that changes Guard's
// state: it takes POST only (any other method is answered 405 with Allow:
// POST), not from another origin in a browser (403), and with the token
// when one is set (401 without it); a refused request never reaches h.
func (s *Server) stateChanging(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			w.WriteHeader(http.StatusMethodNotAllowed)
			fmt.Fprintf(w, "%s changes Guard's state: use POST\n", r.URL.Path)
			return
		}
		if err := s.csrf.Check(r); err != nil {
			s.opts.Logger.Warn("admin request refused: cross-origin request from a browser", "path", r.URL.Path, "remote", r.RemoteAddr,
				"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, "%s refuses cross-origin requests from browsers\n", r.URL.Path)
			return
		}
		if ok, given := s.authorized(r); !ok {
			challenge := `Bearer realm="guard"`
			if given {
				challenge += `, error="invalid_token"`
			}
			s.opts.Logger.Warn("admin request refused: missing or wrong token", "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", challenge)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, "%s needs the admin token: Authorization: Bearer TOKEN (admin.token_file)\n", r.URL.Path)
			return
		}
		h(w, r)
	}
}

// authorized reports whether r carries the admin token, always true when
// none is set, and whether r carried a bearer token at all. The tokens are
// compared by their SHA-256 digests in constant time, so that neither the
// token's bytes nor its length show in the time of a refusal.
func (s *Server) authorized(r *http.Request) (ok, given bool) {
	var want string
	if s.opts.Token != nil {
		want = s.opts.Token()
	}
	if want == "" {
		return true, false
	}
	scheme, got, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return false, false
	}
	g, w := sha256.Sum256([]byte(strings.TrimLeft(got, " "))), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1, true
}

// Handler returns the HTTP handler, for tests.
func (s *Server) Handler() http.Handler { return s.http.Handler }

// Listen binds addr and serves on it in the background.
func (s *Server) Listen(addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if s.opts.TLS != nil {
		ln = tls.NewListener(ln, s.opts.TLS)
	}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("admin server stopped", "error", err)
		}
	}()
	s.opts.Logger.Info("admin listening", "address", ln.Addr().String())
	return ln.Addr(), nil
}

// Shutdown stops the admin server, waiting for requests in flight until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error { return s.http.Shutdown(ctx) }
