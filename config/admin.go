package config

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// maxTokenFile bounds the size of an admin token file.
const maxTokenFile = 4 * kiB

// exampleTokenFile is the path shown in messages about token_file.
const exampleTokenFile = "/run/secrets/guard-admin-token"

// adminToken returns the value of a, the admin block's token_file, and the
// token the file holds, its final line breaks removed. addr is the block's
// address attribute (nil when absent) and address its value: with the
// endpoint off ("") the file is not read, and a token_file is a warning.
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
	fix := fmt.Sprintf("Write the token on one line, for example with openssl rand -hex 32 > %s, "+
		"or remove token_file to leave POST /-/drain and POST /-/reload without a token.", path)
	b, err := readLimited(path, maxTokenFile, "too large for a token")
	if err != nil {
		d.errorf(a.Expr.Range(), &a.Range, "Unreadable token file",
			fmt.Sprintf("Guard cannot read token_file %s %s", describeFileError(path, err), fix))
		return "", ""
	}
	token = strings.TrimRight(string(b), "\r\n")
	if token == "" {
		d.errorf(a.Expr.Range(), &a.Range, "Empty token file",
			fmt.Sprintf("token_file %q holds no token (final line breaks are not part of it), and an empty token would let every request through. %s", path, fix))
		return "", ""
	}
	if i := strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r > '~' }); i >= 0 {
		what := "a space, a tab, a line break or another control character"
		if token[i] > '~' {
			what = "a character outside visible ASCII"
		}
		d.errorf(a.Expr.Range(), &a.Range, "Invalid admin token",
			fmt.Sprintf("The token in token_file %q has %s at byte %d: an HTTP client cannot send it as it is in an Authorization header. "+
				"Use letters, digits and punctuation only. %s", path, what, i+1, fix))
		return "", ""
	}
	return path, token
}
