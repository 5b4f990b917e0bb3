package main

// Docker cannot run here (no engine), so these tests read the Dockerfile
// instead: its build line must build the README's package, static and
// reproducible, and the runtime stage must be what the Kubernetes manifests
// (deploy/kubernetes) assume. The build line is then run as written, with
// the go command of this machine, and the binary checked to be static.

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int    // where it starts, 1-based
	cmd  string // upper case: FROM, RUN, ...
	args string // the rest of the line
}

func parseDockerfile(t *testing.T, src string) []instruction {
	t.Helper()
	var out []instruction
	var cur *instruction
	for i, raw := range strings.Split(src, "\n") {
		line := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimSpace(line)
		if cur == nil && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur != nil && strings.HasPrefix(trimmed, "#") {
			continue // comment lines inside a continued instruction are dropped
		}
		cont := strings.HasSuffix(line, "\\")
		line = strings.TrimSuffix(line, "\\")
		if cur == nil {
			cmd, args, _ := strings.Cut(strings.TrimSpace(line), " ")
			cur = &instruction{line: i + 1, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		} else {
			cur.args += " " + strings.TrimSpace(line)
		}
		if !cont {
			out = append(out, *cur)
			cur = nil
		}
	}
	if cur != nil {
		t.Fatalf("Dockerfile:%d: instruction continued past the end of the file", cur.line)
	}
	return out
}

// shellWords splits a shell command line into words, honouring single and
// double quotes and expanding $NAME and ${NAME} from vars (inside double
// quotes and bare; not inside single quotes). Enough for one build line.
func shellWords(t *testing.T, s string, vars map[string]string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord := false
	expand := func(i int) int { // s[i] == '$'; returns the index after the name
		j := i + 1
		var name string
		if j < len(s) && s[j] == '{' {
			end := strings.IndexByte(s[j:], '}')
			if end < 0 {
				t.Fatalf("unclosed ${ in %q", s)
			}
			name = s[j+1 : j+end]
			j += end + 1
		} else {
			k := j
			for k < len(s) && (s[k] == '_' || s[k] >= 'A' && s[k] <= 'Z' || s[k] >= 'a' && s[k] <= 'z' || s[k] >= '0' && s[k] <= '9') {
				k++
			}
			name, j = s[j:k], k
		}
		v, ok := vars[name]
		if !ok {
			t.Fatalf("build line uses $%s, which no ARG or ENV defines", name)
		}
		w.WriteString(v)
		return j
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			i++
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				t.Fatalf("unclosed ' in %q", s)
			}
			w.WriteString(s[i+1 : i+1+end])
			inWord = true
			i += end + 2
		case c == '"':
			inWord = true
			i++
			for i < len(s) && s[i] != '"' {
				if s[i] == '$' {
					i = expand(i)
					continue
				}
				w.WriteByte(s[i])
				i++
			}
			if i >= len(s) {
				t.Fatalf("unclosed \" in %q", s)
			}
			i++
		case c == '$':
			inWord = true
			i = expand(i)
		case c == ';' || c == '&' || c == '|':
			t.Fatalf("build line %q chains commands; keep go build alone on its RUN line", s)
		default:
			w.WriteByte(c)
			inWord = true
			i++
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// goBuild is the Dockerfile's go build command, taken apart.
type goBuild struct {
	env     map[string]string
	args    []string // everything after "go build", as written (expanded)
	flags   map[string]string
	output  string
	pkg     string
	runLine int
}

// dockerfile is the parsed Dockerfile: its build line and its final stage.
type dockerfile struct {
	build     goBuild
	goVersion string        // the golang image's version
	final     []instruction // the instructions of the last stage, FROM included
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	src, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	ins := parseDockerfile(t, string(src))
	var df dockerfile
	// BuildKit's automatic platform ARGs; empty: the build machine's own.
	global := map[string]string{}
	for _, name := range []string{"BUILDPLATFORM", "BUILDOS", "BUILDARCH", "TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT"} {
		global[name] = ""
	}
	var stage map[string]string // ARGs of the current stage
	found := 0
	for i, in := range ins {
		switch in.cmd {
		case "ARG":
			for _, a := range strings.Fields(in.args) {
				name, def, _ := strings.Cut(a, "=")
				if stage == nil {
					global[name] = def
				} else if gv, ok := global[name]; ok && def == "" {
					stage[name] = gv // ARG NAME in a stage takes the global default
				} else {
					stage[name] = def // BuildKit's TARGETOS etc. are empty without --platform
				}
			}
		case "FROM":
			stage = map[string]string{}
			df.final = ins[i:]
			from := shellWords(t, in.args, global)
			for _, w := range from {
				if rest, ok := strings.CutPrefix(w, "golang:"); ok {
					df.goVersion, _, _ = strings.Cut(rest, "-")
				}
			}
		case "RUN":
			if !strings.Contains(in.args, "go build") {
				continue
			}
			found++
			words := shellWords(t, in.args, stage)
			b := goBuild{env: map[string]string{}, flags: map[string]string{}, runLine: in.line}
			for len(words) > 0 && regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(words[0]) {
				k, v, _ := strings.Cut(words[0], "=")
				b.env[k] = v
				words = words[1:]
			}
			if len(words) < 2 || words[0] != "go" || words[1] != "build" {
				t.Fatalf("Dockerfile:%d: want [ENV=VALUE ...] go build ..., got %q", in.line, words)
			}
			b.args = words[2:]
			for j := 0; j < len(b.args); j++ {
				a := b.args[j]
				if !strings.HasPrefix(a, "-") {
					if b.pkg != "" {
						t.Fatalf("Dockerfile:%d: builds more than one package: %q and %q", in.line, b.pkg, a)
					}
					b.pkg = a
					continue
				}
				name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
				switch name {
				case "o", "ldflags", "tags", "gcflags":
					if !hasVal {
						j++
						if j >= len(b.args) {
							t.Fatalf("Dockerfile:%d: %s without a value", in.line, a)
						}
						val = b.args[j]
					}
				}
				b.flags[name] = val
			}
			b.output = b.flags["o"]
			df.build = b
		}
	}
	if found != 1 {
		t.Fatalf("Dockerfile has %d RUN lines with go build, want exactly 1", found)
	}
	return df
}

// The build line builds the same package as the README, static and
// reproducible, with a Go at least as new as go.mod asks for.
func TestDockerfileBuildLine(t *testing.T) {
	df := readDockerfile(t)
	b := df.build

	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("go (?:run|build)[^\n`]*?(\\./cmd/[A-Za-z0-9_]+)").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md names no `go run ./cmd/...` or `go build ./cmd/...`")
	}
	if want := string(m[1]); b.pkg != want {
		t.Errorf("Dockerfile:%d builds %q, the README runs %q", b.runLine, b.pkg, want)
	}
	if b.env["CGO_ENABLED"] != "0" {
		t.Errorf("Dockerfile:%d: CGO_ENABLED=%q, want 0 (distroless static has no libc)", b.runLine, b.env["CGO_ENABLED"])
	}
	if _, ok := b.flags["trimpath"]; !ok {
		t.Errorf("Dockerfile:%d: no -trimpath", b.runLine)
	}
	if b.output == "" {
		t.Errorf("Dockerfile:%d: no -o", b.runLine)
	}

	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	gm := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	if gm == nil {
		t.Fatal("go.mod has no go line")
	}
	if df.goVersion == "" {
		t.Fatal("the build stage is not FROM golang:VERSION")
	}
	if versionLess(df.goVersion, string(gm[1])) {
		t.Errorf("Dockerfile builds with golang:%s, go.mod needs go %s", df.goVersion, gm[1])
	}
}

// versionLess compares dotted Go versions numerically ("1.26" < "1.26.8").
func versionLess(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// The runtime stage is what the manifests rely on: distroless static,
// a numeric non-root user (runAsNonRoot can only check a number), the
// ports, the binary at /guard with -config /etc/guard/config.hcl.
func TestDockerfileRuntimeStage(t *testing.T) {
	df := readDockerfile(t)
	var (
		from, user        string
		expose            []string
		entrypoint, cmd   []string
		copiedBinary      bool
		copiedConfig      bool
		healthcheckInLast bool
	)
	for _, in := range df.final {
		switch in.cmd {
		case "FROM":
			from = strings.Fields(in.args)[0]
		case "USER":
			user = in.args
		case "EXPOSE":
			expose = append(expose, strings.Fields(in.args)...)
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in.args), &entrypoint); err != nil {
				t.Errorf("Dockerfile:%d: ENTRYPOINT is not in exec (JSON) form: %v", in.line, err)
			}
		case "CMD":
			if err := json.Unmarshal([]byte(in.args), &cmd); err != nil {
				t.Errorf("Dockerfile:%d: CMD is not in exec (JSON) form: %v", in.line, err)
			}
		case "COPY":
			f := strings.Fields(in.args)
			if len(f) == 3 && f[0] == "--from=build" && f[1] == df.build.output && f[2] == "/guard" {
				copiedBinary = true
			}
			if len(f) == 2 && f[0] == "config.hcl" && f[1] == "/etc/guard/config.hcl" {
				copiedConfig = true
			}
		case "HEALTHCHECK":
			healthcheckInLast = true
		}
	}
	if !strings.HasPrefix(from, "gcr.io/distroless/static") || !strings.HasSuffix(from, ":nonroot") {
		t.Errorf("runtime stage FROM %q, want gcr.io/distroless/static-*:nonroot", from)
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %q: want a numeric non-root uid (65532), which runAsNonRoot can verify", user)
	}
	for _, p := range []string{"5222", "5223", "9090"} {
		if !contains(expose, p) {
			t.Errorf("EXPOSE %v lacks %s", expose, p)
		}
	}
	if !copiedBinary {
		t.Errorf("runtime stage does not COPY --from=build %s /guard", df.build.output)
	}
	if !copiedConfig {
		t.Error("runtime stage does not COPY config.hcl /etc/guard/config.hcl")
	}
	if healthcheckInLast {
		t.Error("HEALTHCHECK: Kubernetes ignores it; probes are in deploy/kubernetes")
	}
	if strings.Join(entrypoint, " ") != "/guard" {
		t.Errorf("ENTRYPOINT %q, want [\"/guard\"]", entrypoint)
	}
	if strings.Join(cmd, " ") != "-config /etc/guard/config.hcl" {
		t.Errorf("CMD %q, want [\"-config\", \"/etc/guard/config.hcl\"]", cmd)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// The build line, run as written (its environment and flags, from the
// repository's root), builds a static binary that runs.
func TestDockerfileBuildsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if runtime.GOOS != "linux" {
		t.Skip("checks a Linux ELF binary")
	}
	b := readDockerfile(t).build
	out := filepath.Join(t.TempDir(), "guard")
	args := []string{"build"}
	for i := 0; i < len(b.args); i++ {
		a := b.args[i]
		if a == "-o" {
			i++ // replaced below
			continue
		}
		if strings.HasPrefix(a, "-o=") {
			continue
		}
		args = append(args, a)
	}
	// args ends with the package; -o goes before it.
	args = append(args[:len(args)-1], "-o", out, args[len(args)-1])
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	cmd.Env = os.Environ()
	for k, v := range b.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, o)
	}

	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("binary has a %v program header: it is not static", p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("binary needs shared libraries %v", libs)
	}
	o, err := exec.Command(out, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(o), "guard dev") {
		t.Errorf("built binary: guard version = %q, %v; want \"guard dev ...\" (-X main.version)", o, err)
	}
}
