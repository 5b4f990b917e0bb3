package fedtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guard-xmpp/guard/internal/childproc"
	"github.com/guard-xmpp/guard/internal/ejabberdtest"
)

const (
	ejabberdStartTimeout = 30 * time.Second // until c2s, s2s and ejabberd_ctl answer
	ejabberdStopTimeout  = 10 * time.Second // SIGTERM until SIGKILL
	ejabberdCtlTimeout   = 15 * time.Second // one ejabberd_ctl command

	// ejabberdDistPort is the Erlang distribution port, on 127.0.0.1 in
	// the namespace (no epmd): the namespace is the test's own, so a fixed
	// port is free, and it stays the same across a restart.
	ejabberdDistPort = 4370
)

var ctlSeq atomic.Int64

// StartEjabberd starts an ejabberd serving opts.Domain in ns, with c2s and
// s2s (STARTTLS required on s2s; mod_s2s_dialback unless
// opts.SecureAuth), registers its users and waits until it answers on both
// ports and to ejabberd_ctl. It is stopped at cleanup.
//
// It is started as internal/ejabberdtest starts it (erl with the package's
// ERL_LIBS, as the current user, no epmd, every path explicit), but inside
// the namespace, its ejabberd_ctl commands too (they reach the node over
// the distribution port on the namespace's loopback).
func StartEjabberd(t testing.TB, ns *Netns, opts ServerOptions) *Server {
	t.Helper()
	erl, erlLibs, err := ejabberdtest.RuntimePaths()
	if err != nil {
		t.Fatalf("fedtest: %v: %s", err, ejabberdtest.InstallHint)
	}
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	for _, d := range []string{filepath.Join(dir, "spool"), filepath.Join(dir, "log"), home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Erlang reads the cookie from $HOME/.erlang.cookie and refuses one
	// that others may read.
	if err := os.WriteFile(filepath.Join(home, ".erlang.cookie"), []byte(randomHex(16)), 0o400); err != nil {
		t.Fatal(err)
	}
	s := &Server{Kind: "ejabberd", ServerOptions: opts, Dir: dir, ns: ns,
		logPath: filepath.Join(dir, "log", "ejabberd.log"), outPath: filepath.Join(dir, "ejabberd.out")}
	if s.Users == nil {
		s.Users = DefaultUsers()
	}
	cfg := filepath.Join(dir, "ejabberd.yml")
	if err := os.WriteFile(cfg, []byte(ejabberdConfig(s.ServerOptions)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The Mnesia schema belongs to the node name: the same name at every
	// start, so that a restarted node finds its accounts.
	node := "guard_fed_" + randomHex(4) + "@localhost"
	distArgs := func(node string) []string {
		return []string{"-sname", node, "-erl_epmd_port", strconv.Itoa(ejabberdDistPort), "-start_epmd", "false"}
	}
	// The test's environment without inherited Erlang or ejabberd
	// settings, with HOME (so the cookie) in the server's directory.
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "HOME" || strings.HasPrefix(name, "ERL_") || strings.HasPrefix(name, "EJABBERD") ||
			strings.HasPrefix(name, "CONTRIB_MODULES_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+home, "ERL_LIBS="+erlLibs)

	ctl := func(bound time.Duration, args ...string) (string, error) {
		name := fmt.Sprintf("ctl_%d_%s@localhost", ctlSeq.Add(1), randomHex(3))
		a := append(distArgs(name), "-dist_listen", "false", "-hidden", "-noinput",
			"-s", "ejabberd_ctl", "-extra", node)
		cmd := ns.Command(erl, append(a, args...)...)
		cmd.Dir = dir
		cmd.Env = env
		out, err := childproc.Run(cmd, bound)
		return strings.TrimSpace(string(out)), err
	}

	s.launch = func() (*childproc.Process, error) {
		out, err := os.OpenFile(s.outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		defer out.Close() // the child holds its own copy
		// What ejabberdctl's "foreground" runs, with ERL_DIST_PORT set.
		args := append(distArgs(node),
			"-kernel", "inet_dist_use_interface", "{127,0,0,1}",
			"+K", "true", "+P", "250000",
			"-noinput",
			"-mnesia", "dir", strconv.Quote(filepath.Join(dir, "spool")),
			"-s", "ejabberd")
		cmd := ns.Command(erl, args...)
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Env = append(env,
			"EJABBERD_CONFIG_PATH="+cfg,
			"EJABBERD_LOG_PATH="+s.logPath,
			"EJABBERD_PID_PATH="+filepath.Join(dir, "ejabberd.pid"),
			"ERL_CRASH_DUMP="+filepath.Join(dir, "log", "erl_crash.dump"),
			"ERL_MAX_PORTS=32000",
			"ERL_MAX_ETS_TABLES=1400",
			"CONTRIB_MODULES_PATH="+filepath.Join(dir, "modules"),
			"CONTRIB_MODULES_CONF_DIR="+filepath.Join(dir, "modules", "conf"),
		)
		// erl execs the VM, so the PID (and the signals) are beam.smp's.
		return childproc.Start(cmd, ejabberdStopTimeout)
	}
	s.ready = func(p *childproc.Process) error {
		start := time.Now()
		err := waitReady(p, ejabberdStartTimeout, func() error {
			if err := ns.probe(s.C2S.String(), "jabber:client", s.Domain); err != nil {
				return fmt.Errorf("c2s %s: %w", s.C2S, err)
			}
			if err := ns.probe(s.S2S.String(), "jabber:server", s.Domain); err != nil {
				return fmt.Errorf("s2s %s: %w", s.S2S, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		// The node also answers ejabberd_ctl once its applications run.
		return waitReady(p, ejabberdStartTimeout-time.Since(start), func() error {
			out, err := ctl(ejabberdCtlTimeout, "status")
			if err != nil {
				return fmt.Errorf("ejabberd_ctl status: %v: %s", err, out)
			}
			return nil
		})
	}
	// The users are registered at every start, those that survived a
	// restart too (already registered is no error): a SIGKILL can lose
	// Mnesia's last writes to its disc_only tables (dets files not
	// closed), and the accounts with them.
	s.register = func() error {
		// One ejabberd_ctl per user, at once: each is an Erlang VM start.
		users := sortedKeys(s.Users)
		errs := make([]error, len(users))
		var wg sync.WaitGroup
		for i, u := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := ctl(ejabberdCtlTimeout, "register", u, s.Domain, s.Users[u])
				if err != nil && !strings.Contains(out, "already registered") {
					errs[i] = fmt.Errorf("ejabberd register %s: %v\n%s", u, err, out)
				}
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	s.boot(t)
	return s
}

// ejabberdConfig renders a self-contained ejabberd 23.01 configuration.
func ejabberdConfig(o ServerOptions) string {
	q := strconv.Quote // valid YAML for a domain name, an address or a path
	dialback := "  mod_s2s_dialback: {}\n"
	if o.SecureAuth {
		dialback = ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Generated by internal/fedtest for one test.
loglevel: info
log_rotate_count: 0
hide_sensitive_log_data: false
hosts:
  - %s

# The domain's certificate, for s2s (as TLS server and client) and c2s, and
# the only roots the peer's certificate is checked against.
certfiles:
  - %s
  - %s
ca_file: %s
s2s_cafile: %s

# STARTTLS on every s2s stream. A peer whose certificate verifies
# authenticates with SASL EXTERNAL; one whose certificate does not, with
# dialback (mod_s2s_dialback), if it is loaded.
s2s_use_starttls: required
# Outgoing s2s: IPv4 only (the namespace's names have A records only), and
# a failed connection is retried within a second, not up to 300 s, so that
# a restarted peer is reached soon. The SRV look-up gets an immediate
# NXDOMAIN from the namespace's DNS server; the bound is a fallback.
outgoing_s2s_families:
  - ipv4
outgoing_s2s_port: 5269
s2s_max_retry_delay: 1
s2s_dns_timeout: 2
s2s_dns_retries: 1

listen:
  -
    port: %d
    ip: %s
    module: ejabberd_c2s
    starttls: false
    max_stanza_size: 262144
    access: c2s
  -
    port: %d
    ip: %s
    module: ejabberd_s2s_in
    max_stanza_size: 524288

auth_method: internal
# Plain storage lets every SCRAM variant and PLAIN work.
auth_password_format: plain
disable_sasl_mechanisms:
  - "digest-md5"
  - "x-oauth2"

acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
shaper_rules:
  max_user_sessions: 10

api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"

# No mod_offline: a message that cannot be delivered bounces.
modules:
  mod_admin_extra: {}
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
%s`, q(o.Domain), q(o.CertFile), q(o.KeyFile), q(o.CAFile), q(o.CAFile),
		o.C2S.Port(), q(o.C2S.Addr().String()), o.S2S.Port(), q(o.S2S.Addr().String()), dialback)
	return b.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
