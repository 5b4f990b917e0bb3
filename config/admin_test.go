package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// adminBlock is an admin block on lines 1-4 with token_file on line 3,
// then a listener and a backend.
func adminBlock(address, tokenFile string) string {
	return "admin {\n  address    = \"" + address + "\"\n  token_file = \"" + tokenFile + "\"\n}\n" + minimal
}

// token_file: the token is the file's content without its final line
// breaks; absent or "" means no token.
func TestParseAdminToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name, content, token string
	}{
		{"no final newline", "s3cret", "s3cret"},
		{"a final newline", "s3cret\n", "s3cret"},
		{"CRLF and blank lines at the end", "0123456789abcdef\r\n\r\n", "0123456789abcdef"},
		{"punctuation", "a-b_c.d~e+f/g=", "a-b_c.d~e+f/g="},
	} {
		path := write("token", tt.content)
		c, err := Parse("t.hcl", []byte(adminBlock("127.0.0.1:9090", path)))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if want := (Admin{Address: "127.0.0.1:9090", TokenFile: path, Token: tt.token}); !reflect.DeepEqual(c.Admin, want) {
			t.Errorf("%s: Admin = %+v, want %+v", tt.name, c.Admin, want)
		}
		if c.Warnings() != nil {
			t.Errorf("%s: warnings %v", tt.name, c.Warnings())
		}
	}
	for _, src := range []string{minimal, "admin {\n  token_file = \"\"\n}\n" + minimal, "admin {\n  token_file = null\n}\n" + minimal} {
		c, err := Parse("t.hcl", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if c.Admin != (Admin{Address: DefaultAdminAddress}) {
			t.Errorf("Admin = %+v, want no token", c.Admin)
		}
	}
}

// A token_file that cannot give a token is an error at its value, saying
// how to write one; with the endpoint off it is a warning and not read.
func TestParseAdminTokenRules(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const fix = "Write the token on one line, for example with openssl rand -hex 32 > "
	tests := []struct {
		name, src string
		want      []string // diagLines
		detail    []string // substrings of the first diagnostic's detail
	}{
		{"missing file", adminBlock("127.0.0.1:9090", filepath.Join(dir, "nope")),
			[]string{"3,16 Unreadable token file"}, []string{`Guard cannot read token_file "` + filepath.Join(dir, "nope") + `": no such file or directory.`, fix}},
		{"missing relative file", adminBlock("127.0.0.1:9090", "nope-token"),
			[]string{"3,16 Unreadable token file"}, []string{"A relative path is read from Guard's working directory", fix + "nope-token"}},
		{"a directory", adminBlock("127.0.0.1:9090", dir),
			[]string{"3,16 Unreadable token file"}, []string{"not a regular file"}},
		{"too large", adminBlock("127.0.0.1:9090", write("large", strings.Repeat("a", 4097))),
			[]string{"3,16 Unreadable token file"}, []string{"larger than 4KiB, too large for a token"}},
		{"empty", adminBlock("127.0.0.1:9090", write("empty", "")),
			[]string{"3,16 Empty token file"}, []string{"holds no token", "an empty token would let every request through", fix}},
		{"a newline only", adminBlock("127.0.0.1:9090", write("newline", "\n")),
			[]string{"3,16 Empty token file"}, []string{"final line breaks are not part of it"}},
		{"a space", adminBlock("127.0.0.1:9090", write("space", "two words\n")),
			[]string{"3,16 Invalid admin token"}, []string{"a space, a tab, a line break or another control character at byte 4", fix}},
		{"two lines", adminBlock("127.0.0.1:9090", write("lines", "one\ntwo\n")),
			[]string{"3,16 Invalid admin token"}, []string{"at byte 4"}},
		{"not ASCII", adminBlock("127.0.0.1:9090", write("utf8", "jeton-\u00e9\n")),
			[]string{"3,16 Invalid admin token"}, []string{"a character outside visible ASCII at byte 7"}},
		{"not a string", "admin {\n  token_file = [\"a\"]\n}\n" + minimal,
			[]string{"2,16 Incorrect argument type"}, []string{"token_file must be a string in quotes"}},
		{"unknown key suggests token_file", "admin {\n  token = \"x\"\n}\n" + minimal,
			[]string{"2,3 Unsupported argument"}, []string{`An admin block takes the arguments "address", "token_file" and the block "tls".`}},
		{"tls without key_file", "admin {\n  tls {\n    cert_file = \"a.crt\"\n  }\n}\n" + minimal,
			[]string{"2,3 Missing required argument"}, []string{`has no key_file`}},
		{"tls with a missing certificate", "admin {\n  tls {\n    cert_file = \"nope.crt\"\n    key_file = \"nope.key\"\n  }\n}\n" + minimal,
			[]string{"3,17 Unreadable certificate file", "4,16 Unreadable key file"}, []string{`Guard cannot read cert_file`}},
		{"endpoint off", adminBlock("", filepath.Join(dir, "nope")),
			[]string{"3,16 warning: Unused token_file"}, []string{`address = "" turns the admin endpoint off, so token_file has no effect.`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.hcl", []byte(tt.src))
			var diags []string
			var detail string
			var e *Error
			switch {
			case err != nil && errors.As(err, &e):
				diags, detail = diagLines(e.Diags), e.Diags[0].Detail
			case err != nil:
				t.Fatalf("Parse: %v", err)
			case c.Warnings() != nil:
				errors.As(c.Warnings(), &e)
				diags, detail = diagLines(e.Diags), e.Diags[0].Detail
				if c.Admin.Token != "" || c.Admin.TokenFile != "" {
					t.Errorf("Admin = %+v, want no token", c.Admin)
				}
			}
			if !reflect.DeepEqual(diags, tt.want) {
				t.Errorf("diagnostics %q, want %q", diags, tt.want)
			}
			for _, s := range tt.detail {
				if !strings.Contains(detail, s) {
					t.Errorf("detail %q lacks %q", detail, s)
				}
			}
		})
	}
}

// LoadAdmin reads the admin block alone, with LoadFile's defaults and
// checks: a file broken elsewhere still gives its admin endpoint; a broken
// admin block, a syntax error or a missing file do not.
func TestLoadAdmin(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	token := write("token", "s3cret\n")
	broken := "admin {\n  address    = \"0.0.0.0:9191\"\n  token_file = \"" + token + "\"\n}\nlistener \"c2s\" {\n  adress = \"x\"\n}\nbackend \"b\" {}\nfrobnicate {}\n"
	if _, err := Parse("broken.hcl", []byte(broken)); err == nil {
		t.Fatal("the broken file parses")
	}
	got, err := LoadAdmin(write("broken.hcl", broken))
	if want := (Admin{Address: "0.0.0.0:9191", TokenFile: token, Token: "s3cret"}); err != nil || got != want {
		t.Errorf("LoadAdmin(broken elsewhere) = %+v, %v; want %+v", got, err, want)
	}
	got, err = LoadAdmin(write("none.hcl", minimal))
	if err != nil || got != (Admin{Address: DefaultAdminAddress}) {
		t.Errorf("LoadAdmin(no admin block) = %+v, %v", got, err)
	}
	got, err = LoadAdmin(write("off.hcl", "admin {\n  address = \"\"\n}\n"))
	if err != nil || got != (Admin{}) {
		t.Errorf("LoadAdmin(off) = %+v, %v", got, err)
	}
	for name, src := range map[string]string{
		"empty token":  adminBlock("127.0.0.1:9090", write("empty", "")),
		"bad address":  "admin {\n  address = \"localhost\"\n}\n",
		"unknown key":  "admin {\n  adress = \"127.0.0.1:1\"\n}\n",
		"two blocks":   "admin {}\nadmin {}\n",
		"syntax error": "admin {\n",
	} {
		path := write(strings.ReplaceAll(name, " ", "-")+".hcl", src)
		_, err := LoadAdmin(path)
		var e *Error
		if !errors.As(err, &e) || !strings.HasPrefix(err.Error(), path+":") {
			t.Errorf("LoadAdmin(%s) = %v, want an *Error at %s", name, err, path)
		}
	}
	if _, err := LoadAdmin(filepath.Join(dir, "nope.hcl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadAdmin(missing) = %v, want ErrNotExist", err)
	}
}

// ReadToken applies token_file's rules to any file.
func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if tok, err := ReadToken(write("ok", "abc-123\r\n")); err != nil || tok != "abc-123" {
		t.Errorf("ReadToken = %q, %v", tok, err)
	}
	for name, want := range map[string]string{
		write("empty", "\n"):    "Empty token file: ",
		write("space", "a b"):   "Invalid admin token: ",
		filepath.Join(dir, "x"): "Unreadable token file: Guard cannot read token_file",
	} {
		if tok, err := ReadToken(name); err == nil || !strings.HasPrefix(err.Error(), want) || tok != "" {
			t.Errorf("ReadToken(%s) = %q, %v; want %q...", name, tok, err, want)
		}
	}
}
