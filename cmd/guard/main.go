// Command guard runs Guard, the XMPP connection guardian, and checks its
// configuration.
//
//	guard -config config.hcl              run with a configuration file
//	guard run --listen ADDR --backend ADDR one listener with the defaults
//	guard validate -config FILE           check a file, print diagnostics
//	guard version
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"

	"github.com/guard-xmpp/guard/config"
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
  guard validate [-config FILE] [-probe [-domain D]]
                                           check a configuration file (and, with -probe,
                                           the backends' stream features)
  guard version                            print the version
  guard health [-addr ADDR] [-path PATH]   probe the admin endpoint: exit 0 on 200 (exec probes)
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
	case "health":
		return cmdHealth(args, stdout, stderr)
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
	probe := fs.Bool("probe", false, "also open a stream to every backend and check its stream features")
	domain := fs.String("domain", "localhost", "with -probe: the XMPP domain to ask the backends for")
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
	if *probe && !probeBackends(cfg, *domain, stdout) {
		return 1
	}
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
	if *listen != "" {
		*path = "" // quick start: nothing to reload from
	}
	if err := run(*path, cfg, logger); err != nil {
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
