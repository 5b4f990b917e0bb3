package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// The HCL snippets in a diagnostic's detail: `key = value` and
// `type "label" { ... }` (a one-line block), as an operator would copy them.
var (
	snippetBlock = regexp.MustCompile(`\b[a-z_]+(?: "(?:[^"\\]|\\.)*")* \{`)
	snippetAttr  = regexp.MustCompile(`\b[a-z_][a-z0-9_]* = ("(?:[^"\\]|\\.)*"|\[[^\]]*\]|[^\s,;()]+)`)
)

// suggestions returns every HCL snippet that d suggests: its fix (the block
// written under the detail) and each snippet in its detail, outside the
// quoted strings of the detail (such as a name from the file).
func suggestions(d *hcl.Diagnostic) []string {
	var out []string
	if f := fixOf(d); f != "" {
		out = append(out, f)
	}
	detail := d.Detail
	for start := 0; ; {
		loc := unquoted(detail, snippetBlock.FindAllStringIndex(detail[start:], -1), start)
		if loc == nil {
			break
		}
		end := closingBrace(detail, loc[1]-1)
		if end < 0 {
			out = append(out, detail[loc[0]:]) // unclosed: it does not parse
			detail = detail[:loc[0]]
			break
		}
		out = append(out, detail[loc[0]:end+1])
		detail = detail[:loc[0]] + " " + detail[end+1:]
		start = loc[0] + 1
	}
	for {
		loc := unquoted(detail, snippetAttr.FindAllStringIndex(detail, -1), 0)
		if loc == nil {
			break
		}
		out = append(out, strings.TrimSuffix(detail[loc[0]:loc[1]], "."))
		detail = detail[:loc[0]] + " " + detail[loc[1]:]
	}
	return out
}

// unquoted returns the first of locs (offsets into s[from:]) that starts
// outside a quoted string of s, as offsets into s, or nil.
func unquoted(s string, locs [][]int, from int) []int {
	for _, loc := range locs {
		start := from + loc[0]
		if !insideQuotes(s, start) {
			return []int{start, from + loc[1]}
		}
	}
	return nil
}

// insideQuotes reports whether offset i of s is inside a quoted string,
// counting the quotes before it (a backslash escapes the next byte).
func insideQuotes(s string, i int) bool {
	quoted := false
	for j := 0; j < i; j++ {
		switch {
		case quoted && s[j] == '\\':
			j++
		case s[j] == '"':
			quoted = !quoted
		}
	}
	return quoted
}

// closingBrace returns the index of the brace that closes the one at open
// in s, skipping quoted strings, or -1.
func closingBrace(s string, open int) int {
	depth, quoted := 0, false
	for i := open; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// checkSnippet reports why snippet is not HCL that an operator can paste
// into a file: it must parse, and every value in it must be a constant
// (a string with ${ would be a template).
func checkSnippet(snippet string) string {
	f, diags := hclsyntax.ParseConfig([]byte(snippet+"\n"), "fix.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		return diags.Error()
	}
	var walk func(b *hclsyntax.Body) string
	walk = func(b *hclsyntax.Body) string {
		for _, a := range b.Attributes {
			if _, diags := a.Expr.Value(nil); diags.HasErrors() {
				return diags.Error()
			}
		}
		for _, blk := range b.Blocks {
			if why := walk(blk.Body); why != "" {
				return why
			}
		}
		return ""
	}
	return walk(f.Body.(*hclsyntax.Body))
}

// Every snippet of HCL that a diagnostic suggests parses as HCL and holds
// constants only: the fixes of every file under testdata (the goldens), and
// of files whose names and addresses need escaping in HCL.
func TestFixesParse(t *testing.T) {
	paths, err := filepath.Glob("testdata/*/*.hcl")
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sources[p] = string(b)
	}
	const listener = "listener \"c2s\" {\n  address = \":5222\"\n  backend = \"xmpp\"\n}\n"
	for name, src := range map[string]string{
		// No backend block: the detail suggests one with the name asked for.
		"backend named with a control character": "listener \"c2s\" {\n  address = \":5222\"\n  backend = \"a\\u0001b\"\n}\n",
		"backend named with a template":          "listener \"c2s\" {\n  address = \":5222\"\n  backend = \"$${x}\"\n}\n",
		"backend named with a quote":             "listener \"c2s\" {\n  address = \":5222\"\n  backend = \"a\\\"b\"\n}\n",
		// A backend with an address and nodes: the address as a node.
		"address and nodes": listener + "backend \"xmpp\" {\n  address = \"%%{x}:1\\t\"\n  node \"10.0.0.1:1\" {}\n}\n",
		"a label too many":  "log \"x\" {}\n" + listener + "backend \"xmpp\" {\n  address = \"127.0.0.1:5262\"\n}\n",
		"no listener, a backend with a template in its name": "backend \"$${x}\" {\n  address = \"127.0.0.1:5262\"\n}\n",
		"unused backend with a template in its name":         listener + "backend \"xmpp\" {\n  address = \"127.0.0.1:5262\"\n}\nbackend \"$${x}\" {\n  address = \"127.0.0.1:5263\"\n}\n",
		"negative duration with a control character":         listener + "backend \"xmpp\" {\n  address = \"127.0.0.1:5262\"\n  connect_timeout = \"-\\u00011s\"\n}\n",
		"quoted number":      listener + "backend \"xmpp\" {\n  address = \"127.0.0.1:5262\"\n  max_streams = \" 1e3 \"\n}\n",
		"short deadline":     listener + "backend \"xmpp\" {\n  address = \"127.0.0.1:5262\"\n}\nshutdown {\n  drain_timeout = \"1m\"\n}\n",
		"long queue timeout": listener + "backend \"xmpp\" {\n  address = \"127.0.0.1:5262\"\n  queue_timeout = \"2m\"\n}\n",
	} {
		sources[name] = src
	}
	found := 0
	for name, src := range sources {
		c, err := Parse(name, []byte(src))
		if err == nil {
			err = c.Warnings()
		}
		e, _ := err.(*Error)
		if e == nil {
			if strings.HasPrefix(name, "testdata/") {
				t.Fatalf("%s: %v, want diagnostics", name, err)
			}
			t.Errorf("%s: no diagnostics", name)
			continue
		}
		for _, d := range e.Diags {
			for _, s := range suggestions(d) {
				found++
				if why := checkSnippet(s); why != "" {
					t.Errorf("%s: %s (%s) suggests\n%s\nwhich is not HCL to paste: %s", name, d.Summary, position(*d.Subject), s, why)
				}
			}
		}
	}
	if found < 50 {
		t.Errorf("found %d snippets, want at least 50: is the pattern still right?", found)
	}
}

// hclString writes a string that HCL reads back as the same constant.
func TestHCLString(t *testing.T) {
	for _, s := range []string{
		"", "xmpp", `a"b`, `a\b`, "a\nb\r\tc", "\x00\x01\x7f", "${x}", "%{if x}", "$${x}", "$$", "$", "%", "a$", "a%{",
		"$$${x}", "é", "\u00a0\u2028", "😀", "\U0001F600\u200b",
	} {
		q := hclString(s)
		expr, diags := hclsyntax.ParseExpression([]byte(q), "q.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			t.Errorf("hclString(%q) = %s: %v", s, q, diags)
			continue
		}
		v, diags := expr.Value(nil)
		if diags.HasErrors() || v.AsString() != s {
			t.Errorf("hclString(%q) = %s, which reads back as %#v, %v", s, q, v, diags)
		}
	}
	if q := hclString("a\xffb"); q != `"a`+"\uFFFD"+`b"` {
		t.Errorf("hclString of invalid UTF-8 = %s", q)
	}
}
