// Command guard runs Guard, the XMPP connection guardian, and checks its
// configuration.
//
//	guard [run] [-config FILE | FILE]      run with a configuration file
//	guard run --listen ADDR --backend ADDR one listener with the defaults
//	guard validate [-strict] [FILE]        check a file, print diagnostics
//	guard drain, guard reload [FILE]       ask a running Guard to drain or reload
//	guard health [-addr ADDR]              probe the admin endpoint
//	guard version, guard help
//
// Exit codes: 0 success, 1 failure, 2 bad usage (see usage).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/guard-xmpp/guard/config"
	"github.com/guard-xmpp/guard/proxy"
)

// version is set at build time with -ldflags "-X main.version=..."; empty,
// the module version from the build information stands in, or "devel".
var version = ""

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// The exit codes of every command.
const (
	exitOK      = 0 // done: running Guard stopped cleanly, the file is valid, the request succeeded
	exitFailure = 1 // the file is invalid, Guard failed, a probe or a request failed
	exitUsage   = 2 // the command line is wrong: unknown command or flag, conflicting arguments
)

const usage = `Usage:
  guard [run] [-config FILE | FILE]        run Guard (default FILE: config.hcl)
  guard run --listen ADDR --backend ADDR   run one listener with default settings, no file
  guard validate [-strict] [-probe [-domain D]] [-config FILE | FILE]
                                           check a configuration file (and, with -probe,
                                           the backends' stream features); -strict: fail
                                           on warnings too
  guard drain [-admin ADDR] [-token-file F] [-config FILE | FILE]
                                           ask a running Guard to drain (POST /-/drain)
  guard reload [-admin ADDR] [-token-file F] [-config FILE | FILE]
                                           ask a running Guard to reload its file (POST /-/reload);
                                           both print Guard's answer; the address and the token
                                           come from the file's admin block, or from the flags
  guard health [-addr ADDR] [-path PATH]   probe the admin endpoint: exit 0 on 200 (exec probes)
  guard version | --version                print the version
  guard help | -h | --help                 print this help

FILE may be given as -config FILE or as the last argument, not both (unless they
name the same file).

Exit codes:
  0  success: Guard stopped cleanly; the file is valid; the answer was 2xx
  1  failure: the file is invalid (with -strict, a warning too); Guard could not
     start or stopped on an error; a probe or a request failed
  2  bad usage: unknown command or flag, two different files, extra arguments
`

func realMain(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			args[0] = "help"
		case "-version", "--version":
			args[0] = "version"
		}
		if len(args[0]) > 0 && args[0][0] != '-' {
			cmd, args = args[0], args[1:]
		}
	}
	switch cmd {
	case "run":
		return cmdRun(args, stderr)
	case "validate":
		return cmdValidate(args, stdout, stderr)
	case "health":
		return cmdHealth(args, stdout, stderr)
	case "drain":
		return cmdAdminPost("drain", "/-/drain", args, stdout, stderr)
	case "reload":
		return cmdAdminPost("reload", "/-/reload", args, stdout, stderr)
	case "version":
		if len(args) > 0 {
			return usageError(stderr, "version", fmt.Sprintf("unexpected argument %q", args[0]))
		}
		fmt.Fprintln(stdout, "guard", versionString())
		return exitOK
	case "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		hint := ""
		if strings.HasSuffix(cmd, ".hcl") || isFile(cmd) {
			hint = fmt.Sprintf(" (to run Guard with a file: guard run %s)", cmd)
		}
		fmt.Fprintf(stderr, "guard: unknown command %q%s\n\n%s", cmd, hint, usage)
		return exitUsage
	}
}

// usageError reports a wrong command line of cmd and returns exitUsage.
func usageError(stderr io.Writer, cmd, msg string) int {
	fmt.Fprintf(stderr, "guard %s: %s\nRun 'guard help' for usage.\n", cmd, msg)
	return exitUsage
}

// parseFlags parses args with fs, letting at most one positional argument
// (a configuration file) stand before, between or after the flags; after
// "--" every argument is positional. It returns the positional argument, or
// "". A help flag is flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) (string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	switch len(pos) {
	case 0:
		return "", nil
	case 1:
		return pos[0], nil
	}
	return "", argsError(fmt.Sprintf("one configuration file at most, got %d: %q", len(pos), pos))
}

// argsError is a wrong command line that parseFlags finds itself.
type argsError string

func (e argsError) Error() string { return string(e) }

// flagError is the exit code for an error of parseFlags or fs.Parse in
// command cmd: 0 for -h (the flag package has printed the command's
// flags), else a usage error.
func flagError(stderr io.Writer, cmd string, err error) int {
	var ae argsError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ae):
		return usageError(stderr, cmd, ae.Error())
	}
	return exitUsage // the flag package has said why
}

// configFile returns the configuration file a command works on: the
// positional file, or the -config flag's value (its default when neither is
// given), and whether one was given. Both given must name the same file:
// never silently use another.
func configFile(fs *flag.FlagSet, positional string) (path string, given bool, err error) {
	f := fs.Lookup("config")
	flagSet := false
	fs.Visit(func(v *flag.Flag) { flagSet = flagSet || v.Name == "config" })
	switch {
	case positional == "":
		return f.Value.String(), flagSet, nil
	case flagSet && !sameFile(positional, f.Value.String()):
		return "", true, fmt.Errorf("-config %q and %q name different files: give one of them", f.Value.String(), positional)
	}
	return positional, true, nil
}

// sameFile reports whether a and b name the same file: the same cleaned
// path, or two paths of one existing file.
func sameFile(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

func versionString() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return versionOf(version, bi)
}

// versionOf is the version line of a binary built with -X main.version=set
// and build information bi (nil when there is none): set, else the main
// module's version (a tag for go install ...@v1.2.3, a pseudo-version from
// the repository's commit for go build), else "devel"; then the commit when
// the version does not hold it already, and the Go version.
func versionOf(set string, bi *debug.BuildInfo) string {
	v := set
	if v == "" && bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "devel"
	}
	if bi == nil {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 && !strings.Contains(v, s.Value[:12]) {
			v += " (" + s.Value[:12] + ")"
		}
	}
	if bi.GoVersion != "" {
		v += " " + bi.GoVersion
	}
	return v
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", "config.hcl", "configuration file to check (or give it as the last argument)")
	strict := fs.Bool("strict", false, "fail (exit 1) on warnings too")
	probe := fs.Bool("probe", false, "also open a stream to every backend and check its stream features")
	domain := fs.String("domain", proxy.DefaultHealthDomain, "with -probe: the XMPP domain to ask the backends for")
	positional, err := parseFlags(fs, args)
	if err != nil {
		return flagError(stderr, "validate", err)
	}
	path, _, err := configFile(fs, positional)
	if err != nil {
		return usageError(stderr, "validate", err.Error())
	}
	cfg, err := config.LoadFile(path)
	if err != nil {
		config.WriteDiagnostics(stderr, err, 0, false)
		return exitFailure
	}
	if w := cfg.Warnings(); w != nil {
		config.WriteDiagnostics(stderr, w, 0, false)
		if *strict {
			n := 1
			var e *config.Error
			if errors.As(w, &e) {
				n = len(e.Diags)
			}
			word := "warnings"
			if n == 1 {
				word = "warning"
			}
			fmt.Fprintf(stderr, "%s: not valid with -strict: %d %s\n", path, n, word)
			return exitFailure
		}
	}
	fmt.Fprintf(stdout, "%s: valid (%d listeners, %d backends)\n", path, len(cfg.Listeners), len(cfg.Backends))
	if *probe && !probeBackends(cfg, *domain, stdout) {
		return exitFailure
	}
	return exitOK
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", "config.hcl", "configuration file (or give it as the last argument)")
	listen := fs.String("listen", "", "quick start without a file: address to listen on (needs --backend)")
	backend := fs.String("backend", "", "quick start: address of the XMPP server")
	positional, err := parseFlags(fs, args)
	if err != nil {
		return flagError(stderr, "run", err)
	}
	path, given, err := configFile(fs, positional)
	if err != nil {
		return usageError(stderr, "run", err.Error())
	}
	var cfg *config.Config
	switch {
	case *listen != "" || *backend != "":
		if *listen == "" || *backend == "" {
			return usageError(stderr, "run", "--listen and --backend go together")
		}
		if given {
			return usageError(stderr, "run", fmt.Sprintf("--listen and --backend run without a file: drop %q, or drop them", path))
		}
		cfg = config.Default(*listen, *backend)
		path = "" // quick start: nothing to reload from
	default:
		cfg, err = config.LoadFile(path)
		if err != nil {
			config.WriteDiagnostics(stderr, err, 0, false)
			return exitFailure
		}
		if w := cfg.Warnings(); w != nil {
			config.WriteDiagnostics(stderr, w, 0, false)
		}
	}
	logger := newLogger(cfg.Log, stderr)
	if err := run(path, cfg, logger); err != nil {
		logger.Error("guard stopped", "error", err)
		return exitFailure
	}
	return exitOK
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
