package config

import (
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// maxTokenFile bounds the size of an admin token file.
const maxTokenFile = 4 * kiB

// exampleTokenFile is the path shown in messages about token_file.
const exampleTokenFile = "/run/secrets/guard-admin-token"

// tokenError says why a file holds no usable admin token: a diagnostic's
// summary and detail.
type tokenError struct{ summary, detail string }

func (e *tokenError) Error() string { return e.summary + ": " + e.detail }

// readToken reads the admin token from the file at path: its content
// without its final line breaks, which must be visible ASCII and not empty.
func readToken(path string) (string, *tokenError) {
	b, err := readLimited(path, maxTokenFile, "too large for a token")
	if err != nil {
		return "", &tokenError{"Unreadable token file", "Guard cannot read token_file " + describeFileError(path, err)}
	}
	token := strings.TrimRight(string(b), "\r\n")
	if token == "" {
		return "", &tokenError{"Empty token file",
			fmt.Sprintf("token_file %q holds no token (final line breaks are not part of it), and an empty token would let every request through.", path)}
	}
	if i := strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r > '~' }); i >= 0 {
		what := "a space, a tab, a line break or another control character"
		if token[i] > '~' {
			what = "a character outside visible ASCII"
		}
		return "", &tokenError{"Invalid admin token",
			fmt.Sprintf("The token in token_file %q has %s at byte %d: an HTTP client cannot send it as it is in an Authorization header. "+
				"Use letters, digits and punctuation only.", path, what, i+1)}
	}
	return token, nil
}

// ReadToken reads an admin token from the file at path as the admin
// block's token_file is read: the file's content without its final line
// breaks, visible ASCII, not empty, the file at most 4 KiB.
func ReadToken(path string) (string, error) {
	token, err := readToken(path)
	if err != nil {
		return "", err
	}
	return token, nil
}

// adminToken returns the value of a, the admin block's token_file, and the
// token the file holds. addr is the block's address attribute (nil when
// absent) and address its value: with the endpoint off ("") the file is not
// read, and a token_file is a warning.
func (d *decoder) adminToken(a, addr *hcl.Attribute, address string) (file, token string) {
	path, ok := d.value(a, exampleTokenFile)
	if !ok || path == "" {
		return "", ""
	}
	if address == "" {
		if addr == nil || !d.reported(addr) {
			d.warnf(a.Expr.Range(), &a.Range, "Unused token_file",
				`address = "" turns the admin endpoint off, so token_file has no effect. Set address, or remove token_file.`)
		}
		return "", ""
	}
	token, err := readToken(path)
	if err != nil {
		d.errorf(a.Expr.Range(), &a.Range, err.summary, fmt.Sprintf("%s Write the token on one line, for example with "+
			"openssl rand -hex 32 > %s, or remove token_file to leave POST /-/drain and POST /-/reload without a token.", err.detail, path))
		return "", ""
	}
	return path, token
}

// LoadAdmin reads the admin block of the configuration file at path, with
// its defaults and checks as LoadFile applies them (the token_file is
// read), and nothing else: the other blocks are not decoded, so that
// `guard drain` and `guard reload` find the admin endpoint in a file that an
// edit broke elsewhere. A file that does not parse, or whose admin block is
// invalid, gives an *Error; one that cannot be read the *os.PathError,
// wrapped.
func LoadAdmin(path string) (Admin, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return Admin{}, fmt.Errorf("config: %w", err)
	}
	p := hclparse.NewParser()
	f, diags := p.ParseHCL(src, path)
	if diags.HasErrors() {
		return Admin{}, newError(diags, p.Files())
	}
	d := &decoder{}
	c := defaults()
	content, _, _ := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "admin"}}})
	if b := d.single(content.Blocks); b != nil {
		c.Admin = d.admin(b).value
	}
	if d.diags.HasErrors() {
		return Admin{}, newError(d.diags, p.Files())
	}
	return c.Admin, nil
}
