// Command guard runs Guard, the XMPP connection guardian, and checks its
// configuration.
//
//	guard -config config.hcl              run with a configuration file
//	guard run --listen ADDR --backend ADDR one listener with the defaults
//	guard validate -config FILE           check a file, print diagnostics
//	guard version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/guard-xmpp/guard/admin"
	"github.com/guard-xmpp/guard/config"
	"github.com/guard-xmpp/guard/policy"
	"github.com/guard-xmpp/guard/proxy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `Usage:
  guard [-config FILE]                     run Guard (default FILE: config.hcl)
  guard run [-config FILE]                 the same
  guard run --listen ADDR --backend ADDR   run one listener with default settings
  guard validate [-config FILE]            check a configuration file
  guard version                            print the version
`

func realMain(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return cmdRun(args, stderr)
	case "validate":
		return cmdValidate(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "guard", versionString())
		return 0
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "guard: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		v += " " + bi.GoVersion
	}
	return v
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "config.hcl", "configuration file to check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.LoadFile(*path)
	if err != nil {
		config.WriteDiagnostics(stderr, err, 0, false)
		return 1
	}
	if w := cfg.Warnings(); w != nil {
		config.WriteDiagnostics(stderr, w, 0, false)
	}
	fmt.Fprintf(stdout, "%s: valid (%d listeners, %d backends)\n", *path, len(cfg.Listeners), len(cfg.Backends))
	return 0
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "config.hcl", "configuration file")
	listen := fs.String("listen", "", "quick start: address to listen on (needs --backend; ignores -config)")
	backend := fs.String("backend", "", "quick start: address of the XMPP server")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var cfg *config.Config
	switch {
	case *listen != "" || *backend != "":
		if *listen == "" || *backend == "" {
			fmt.Fprintln(stderr, "guard run: --listen and --backend go together")
			return 2
		}
		cfg = config.Default(*listen, *backend)
	default:
		var err error
		cfg, err = config.LoadFile(*path)
		if err != nil {
			config.WriteDiagnostics(stderr, err, 0, false)
			return 1
		}
		if w := cfg.Warnings(); w != nil {
			config.WriteDiagnostics(stderr, w, 0, false)
		}
	}
	logger := newLogger(cfg.Log, stderr)
	if err := run(cfg, logger); err != nil {
		logger.Error("guard stopped", "error", err)
		return 1
	}
	return 0
}

// newLogger builds the one root logger of the process and sends the
// standard library's log package into it.
func newLogger(c config.Log, w io.Writer) hclog.Logger {
	l := hclog.New(&hclog.LoggerOptions{
		Name:       "guard",
		Level:      hclog.LevelFromString(c.Level),
		JSONFormat: c.Format == "json",
		Output:     w,
	})
	log.SetOutput(l.StandardWriter(&hclog.StandardLoggerOptions{InferLevels: true}))
	log.SetFlags(0)
	return l
}

// listenerConfig translates one configured listener for the proxy.
func listenerConfig(cfg *config.Config, l config.Listener, pol *policy.Policy) proxy.ListenerConfig {
	b, _ := cfg.Backend(l.Backend)
	return proxy.ListenerConfig{
		Name:    l.Name,
		Address: l.Address,
		Backend: proxy.Backend{
			Name:           b.Name,
			Address:        b.Address,
			ConnectTimeout: b.ConnectTimeout,
			ReplyTimeout:   b.ReplyTimeout,
			Admission: proxy.Admission{
				MaxStreams:          b.MaxStreams,
				QueueSize:           b.QueueSize,
				QueueTimeout:        b.QueueTimeout,
				NewStreamsPerSecond: b.NewStreamsPerSecond,
				NewStreamsBurst:     b.NewStreamsBurst,
			},
		},
		Timeouts: proxy.Timeouts{
			Handshake:    l.Timeouts.Handshake,
			Idle:         l.Timeouts.Idle,
			HalfClose:    l.Timeouts.HalfClose,
			Probe:        l.Timeouts.Probe,
			ProbeTimeout: l.Timeouts.ProbeTimeout,
		},
		Limits: proxy.AddrLimits{
			MaxConnsPerIP:        l.Limits.MaxConnsPerIP,
			ConnRatePerIP:        l.Limits.ConnRatePerIP,
			ConnBurstPerIP:       l.Limits.ConnBurstPerIP,
			TrackedAddresses:     l.Limits.TrackedAddresses,
			ClientBytesPerSecond: l.Limits.ClientBytesPerSecond,
		},
		MaxStanzaSize: l.Limits.MaxStanzaSize,
		MaxHeaderSize: l.Limits.MaxHeaderSize,
		Policy:        pol,
	}
}

// run serves cfg until SIGTERM or SIGINT, then drains.
func run(cfg *config.Config, logger hclog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	pol, err := policy.New(cfg.Policy)
	if err != nil {
		return err // config validated it; this is a bug if it happens
	}
	srv := proxy.New(proxy.Options{Logger: logger.Named("proxy"), Metrics: proxy.NewMetrics(reg)})
	for _, l := range cfg.Listeners {
		if _, err := srv.Listen(listenerConfig(cfg, l, pol)); err != nil {
			srv.Close()
			return err
		}
	}

	var adm *admin.Server
	if cfg.Admin.Address != "" {
		adm = admin.New(admin.Options{
			Logger:   logger.Named("admin"),
			Gatherer: reg,
			Ready:    func() bool { return !srv.Draining() },
		})
		if _, err := adm.Listen(cfg.Admin.Address); err != nil {
			srv.Close()
			return fmt.Errorf("admin: %w", err)
		}
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	logger.Info("guard started", "version", version, "listeners", len(cfg.Listeners))
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			logger.Warn("SIGHUP: configuration reload is not implemented yet; the running configuration stays")
			continue
		}
		logger.Info("draining", "signal", sig.String(), "drain_timeout", cfg.Shutdown.DrainTimeout, "open", srv.Open())
		break
	}

	ctx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.DrainTimeout)
	defer cancel()
	// A second signal ends the drain at once.
	go func() {
		select {
		case <-sigs:
			logger.Warn("second signal: closing every stream now")
			cancel()
		case <-ctx.Done():
		}
	}()
	err = srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		logger.Info("drain time over; closed remaining streams")
	}
	if adm != nil {
		actx, acancel := context.WithTimeout(context.Background(), time.Second)
		adm.Shutdown(actx)
		acancel()
	}
	logger.Info("stopped")
	return nil
}
