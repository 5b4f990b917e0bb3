package config

import (
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agext/levenshtein"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// This file holds the checks of single blocks and values. Each adds its
// diagnostics to the decoder and returns a usable value (the default) on
// error, so that decoding goes on and finds the next problem.

// errorf adds an error at subject; context, if set, is the larger range
// shown around it (the whole attribute for a bad value).
func (d *decoder) errorf(subject hcl.Range, context *hcl.Range, summary, detail string) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   detail,
		Subject:  subject.Ptr(),
		Context:  context,
	})
}

// content checks body against schema and returns what it holds. Unknown
// arguments and blocks are errors; hcl's own message (with its "Did you
// mean" suggestion) gets the list of what is allowed, in the words of what,
// such as "A listener block".
func (d *decoder) content(body hcl.Body, schema *hcl.BodySchema, what string) *hcl.BodyContent {
	c, diags := body.Content(schema)
	for _, diag := range diags {
		switch diag.Summary {
		case "Unsupported argument", "Unsupported block type":
			diag.Detail += " " + allowed(schema, what)
		}
		// Wrong label counts: show the form that is right.
		typ, found := strings.CutPrefix(diag.Summary, "Missing name for ")
		if !found {
			typ, found = strings.CutPrefix(diag.Summary, "Extraneous label for ")
		}
		for _, h := range schema.Blocks {
			if found && h.Type == typ {
				form := h.Type
				for _, l := range h.LabelNames {
					form += fmt.Sprintf(" %q", strings.ToUpper(l))
				}
				diag.Detail += fmt.Sprintf(" Write it as %s { ... }.", form)
			}
		}
	}
	d.diags = append(d.diags, diags...)
	if c == nil {
		c = &hcl.BodyContent{}
	}
	return c
}

// allowed describes what schema allows, e.g. `A listener block takes the
// arguments "address", "backend" and the block "timeouts".`
func allowed(schema *hcl.BodySchema, what string) string {
	var attrs, blocks []string
	for _, a := range schema.Attributes {
		attrs = append(attrs, a.Name)
	}
	for _, b := range schema.Blocks {
		blocks = append(blocks, b.Type)
	}
	var parts []string
	if len(attrs) > 0 {
		parts = append(parts, plural("the argument", len(attrs))+" "+quoteList(attrs))
	}
	if len(blocks) > 0 {
		parts = append(parts, plural("the block", len(blocks))+" "+quoteList(blocks))
	}
	if len(parts) == 0 {
		return what + " takes nothing."
	}
	return what + " takes " + strings.Join(parts, " and ") + "."
}

func plural(s string, n int) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

// single returns the first of blocks, or nil, and reports every further one:
// a block such as log may appear once.
func (d *decoder) single(blocks hcl.Blocks) *hcl.Block {
	if len(blocks) == 0 {
		return nil
	}
	for _, b := range blocks[1:] {
		d.errorf(b.DefRange, nil, fmt.Sprintf("Duplicate %s block", b.Type),
			fmt.Sprintf("Only one %s block is allowed, and one is already defined at %s. Merge the two.",
				b.Type, blocks[0].DefRange))
	}
	return blocks[0]
}

// unique reports labelled blocks whose name an earlier block already took.
func (d *decoder) unique(blocks hcl.Blocks) {
	first := map[string]*hcl.Block{}
	for _, b := range blocks {
		name := b.Labels[0]
		f, dup := first[name]
		if !dup {
			first[name] = b
			continue
		}
		d.errorf(b.DefRange, nil, fmt.Sprintf("Duplicate %s name", b.Type),
			fmt.Sprintf("%s %s named %q is already defined at %s. Names must be unique: rename or remove one of them.",
				article(b.Type), b.Type, name, f.DefRange))
	}
}

// article returns "An" before a word that starts with a vowel, else "A".
func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "An"
	}
	return "A"
}

// name checks the label of a named block. Names appear in logs and metric
// labels, so they are kept to letters, digits, '-', '_' and '.'.
func (d *decoder) name(b *hcl.Block) {
	name := b.Labels[0]
	if name == "" || strings.Map(nameRune, name) != name {
		d.errorf(b.LabelRanges[0], &b.DefRange, fmt.Sprintf("Invalid %s name", b.Type),
			fmt.Sprintf(`%q is not a valid name. Use letters, digits, "-", "_" and "." only, e.g. %s %q.`,
				name, b.Type, strings.Map(nameRune, name)))
	}
}

// nameRune maps r to itself if names may hold it, else to '-'.
func nameRune(r rune) rune {
	if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
		return r
	}
	return '-'
}

// blockName names b in messages: `listener "c2s"`, or `log`.
func blockName(b *hcl.Block) string {
	if len(b.Labels) == 0 {
		return b.Type
	}
	return fmt.Sprintf("%s %q", b.Type, b.Labels[0])
}

// required returns attrs[name], reporting its absence at b.
func (d *decoder) required(b *hcl.Block, attrs hcl.Attributes, name, example string) *hcl.Attribute {
	a := attrs[name]
	if a == nil {
		d.errorf(b.DefRange, nil, "Missing required argument",
			fmt.Sprintf("%s has no %s. Add one, e.g. %s = %q.", blockName(b), name, name, example))
	}
	return a
}

// value evaluates a as a string constant. ok is false when a is absent or
// null (the caller uses its default) and when a is not a constant that
// converts to a string (reported, with example as the form to use).
func (d *decoder) value(a *hcl.Attribute, example string) (s string, ok bool) {
	if a == nil {
		return "", false
	}
	v, diags := a.Expr.Value(nil)
	for _, diag := range diags {
		// A bare word such as `level = info` reads as a variable.
		if t, isVar := a.Expr.(*hclsyntax.ScopeTraversalExpr); isVar && diag.Summary == "Variables not allowed" && len(t.Traversal) == 1 {
			diag.Detail += fmt.Sprintf(" To write the word as text, put it in quotes: %s = %q.", a.Name, t.Traversal.RootName())
		}
	}
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
		return "", false
	}
	sv, err := convert.Convert(v, cty.String)
	if err != nil {
		d.errorf(a.Expr.Range(), &a.Range, "Incorrect argument type",
			fmt.Sprintf("%s must be a string in quotes, not %s, e.g. %s = %q.", a.Name, kind(v.Type()), a.Name, example))
		return "", false
	}
	return sv.AsString(), true
}

// kind names t for people who write HCL rather than cty.
func kind(t cty.Type) string {
	switch {
	case t.IsTupleType() || t.IsListType() || t.IsSetType():
		return "a list"
	case t.IsObjectType() || t.IsMapType():
		return "an object"
	}
	return t.FriendlyName()
}

// str returns the string value of a, or def.
func (d *decoder) str(a *hcl.Attribute, def, example string) string {
	s, ok := d.value(a, example)
	if !ok {
		return def
	}
	return s
}

// oneOf returns the value of a, which must be one of allowed, or def.
// what names the value in messages: "log level".
func (d *decoder) oneOf(a *hcl.Attribute, def, what string, allowed ...string) string {
	s, ok := d.value(a, def)
	if !ok {
		return def
	}
	for _, v := range allowed {
		if s == v {
			return s
		}
	}
	detail := fmt.Sprintf("%q is not a %s.", s, what)
	if sug := suggest(s, allowed); sug != "" {
		detail += fmt.Sprintf(" Did you mean %q?", sug)
	}
	detail += " Use one of " + quoteList(allowed) + fmt.Sprintf("; the default is %q.", def)
	d.errorf(a.Expr.Range(), &a.Range, "Invalid "+what, detail)
	return def
}

// durationRule says what a duration attribute accepts.
type durationRule struct {
	def     time.Duration
	zero    string // what 0 does, e.g. "turn the idle timeout off"; "" if 0 is not allowed
	example string // a typical positive value, e.g. "10s"
}

// duration parses the value of a as a Go duration ("500ms", "10s", "2m").
func (d *decoder) duration(a *hcl.Attribute, rule durationRule) time.Duration {
	s, ok := d.value(a, rule.example)
	if !ok {
		return rule.def
	}
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		detail := fmt.Sprintf(`%q is not a duration. Use a number with a unit: "500ms", "10s", "2m".`, s)
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			detail += fmt.Sprintf(" A plain number has no unit: for seconds, write %q.", s+"s")
		}
		d.errorf(a.Expr.Range(), &a.Range, "Invalid duration", detail)
		return rule.def
	case v < 0:
		detail := fmt.Sprintf("%s = %q is negative.", a.Name, s)
		if rule.zero != "" {
			detail += fmt.Sprintf(` Use "0s" to %s, or a positive duration such as %q.`, rule.zero, rule.example)
		} else {
			detail += fmt.Sprintf(" Use a positive duration such as %q.", rule.example)
		}
		d.errorf(a.Expr.Range(), &a.Range, "Negative duration", detail)
		return rule.def
	case v == 0 && rule.zero == "":
		d.errorf(a.Expr.Range(), &a.Range, "Duration must be positive",
			fmt.Sprintf("%s must be greater than zero. Use a positive duration such as %q, or leave it out for the default, %s.",
				a.Name, rule.example, rule.def))
		return rule.def
	}
	return v
}

// Size units: a size is written as a whole number and one of sizeUnits.
const (
	kiB = 1024
	miB = 1024 * kiB
)

// sizeUnits are the units a size may have, exactly as written (case
// matters: "kb" and "KIB" are errors), with their size in bytes.
var sizeUnits = []struct {
	name  string
	bytes int64
}{{"B", 1}, {"KB", 1000}, {"KiB", kiB}, {"MB", 1000 * 1000}, {"MiB", miB}}

// sizeRule says what a size attribute accepts.
type sizeRule struct {
	def, min, max int    // in bytes
	example       string // a typical value, e.g. "256KiB"
}

// size parses the value of a as a number of bytes, such as "512B", "4KiB",
// "1MB", within rule.min and rule.max.
func (d *decoder) size(a *hcl.Attribute, rule sizeRule) int {
	s, ok := d.value(a, rule.example)
	if !ok {
		return rule.def
	}
	bad := func(summary, detail string) int {
		d.errorf(a.Expr.Range(), &a.Range, summary, detail)
		return rule.def
	}
	const form = `Use a whole number with a unit, B, KB, KiB, MB or MiB (1KB = 1000 bytes, 1KiB = 1024): "512B", "4KiB", "256KiB".`
	i := strings.IndexFunc(strings.TrimPrefix(s, "-"), func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	} else if strings.HasPrefix(s, "-") {
		i++
	}
	num, unit := s[:i], s[i:]
	if num == "" || num == "-" {
		return bad("Invalid size", fmt.Sprintf("%q is not a size. %s", s, form))
	}
	if unit == "" {
		detail := fmt.Sprintf("%q has no unit. For bytes, write %q", s, s+"B")
		if n, err := strconv.Atoi(num); err == nil && n > 0 && n%kiB == 0 {
			detail += fmt.Sprintf(", or %q", strconv.Itoa(n/kiB)+"KiB")
		}
		return bad("Invalid size", detail+". "+form)
	}
	var per int64
	for _, u := range sizeUnits {
		if unit == u.name {
			per = u.bytes
		}
	}
	if per == 0 {
		detail := fmt.Sprintf("%q is not a size: %q is not a unit.", s, unit)
		var names []string
		for _, u := range sizeUnits {
			names = append(names, u.name)
		}
		if t := strings.TrimSpace(unit); t != unit && slices.Contains(names, t) {
			detail += fmt.Sprintf(" Write the number and the unit without a space: %q.", num+t)
		} else if sug := suggest(unit, names); strings.EqualFold(sug, unit) {
			detail += fmt.Sprintf(" Units are case-sensitive: did you mean %q?", num+sug)
		}
		return bad("Invalid size", detail+" "+form)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	bytes := n * per
	if err != nil || n > math.MaxInt64/per || n < math.MinInt64/per {
		// Too many digits for any size: certainly above the maximum.
		bytes = math.MaxInt64
	}
	if bytes < int64(rule.min) || bytes > int64(rule.max) {
		given := fmt.Sprintf("%s = %q", a.Name, s)
		if unit != "B" && bytes != math.MaxInt64 {
			given += fmt.Sprintf(" (%d bytes)", bytes)
		}
		than := "less than the smallest allowed, " + describeSize(rule.min)
		if bytes > int64(rule.max) {
			than = "more than the largest allowed, " + describeSize(rule.max)
		}
		return bad("Size out of range", fmt.Sprintf("%s is %s. Use a size from %s to %s, such as %q, or leave it out for the default, %s.",
			given, than, formatSize(rule.min), formatSize(rule.max), rule.example, formatSize(rule.def)))
	}
	return int(bytes)
}

// formatSize writes n bytes in the largest binary unit that holds it whole:
// "16MiB", "4KiB", "512B".
func formatSize(n int) string {
	switch {
	case n != 0 && n%miB == 0:
		return strconv.Itoa(n/miB) + "MiB"
	case n != 0 && n%kiB == 0:
		return strconv.Itoa(n/kiB) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// describeSize is formatSize with the number of bytes, where that differs:
// "16MiB (16777216 bytes)", "512B".
func describeSize(n int) string {
	f := formatSize(n)
	if strings.HasSuffix(f, "iB") {
		f += fmt.Sprintf(" (%d bytes)", n)
	}
	return f
}

// addrRule says what an address attribute accepts.
type addrRule struct {
	listen   bool   // Guard listens here: an empty host means all interfaces, port 0 a free port
	optional bool   // "" is allowed and turns the feature off
	example  string // e.g. "0.0.0.0:5222"
}

// address returns the value of a, a host:port with a numeric port, or def.
func (d *decoder) address(a *hcl.Attribute, def string, rule addrRule) string {
	s, ok := d.value(a, rule.example)
	if !ok {
		return def
	}
	if s == "" && rule.optional {
		return ""
	}
	bad := func(summary, detail string) string {
		d.errorf(a.Expr.Range(), &a.Range, summary, detail)
		return def
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		why := err.Error()
		if ae, ok := err.(*net.AddrError); ok {
			why = ae.Err
		}
		detail := fmt.Sprintf(`%q is not HOST:PORT (%s). Write it as host, colon, port, e.g. %q; put an IPv6 host in brackets, e.g. "[::1]:5222".`,
			s, why, rule.example)
		if rule.optional {
			detail += ` Use "" to turn it off.`
		}
		return bad("Invalid address", detail)
	}
	ports := "from 1 to 65535"
	if rule.listen {
		ports = "from 1 to 65535 (0 picks a free port, for tests)"
	}
	n, err := strconv.Atoi(port)
	switch {
	case err != nil || strings.ContainsAny(port, "+-"):
		return bad("Invalid port", fmt.Sprintf("%q in %q is not a port number. Use a number %s, e.g. %q.", port, s, ports, rule.example))
	case n > 65535 || n == 0 && !rule.listen:
		return bad("Invalid port", fmt.Sprintf("%d in %q is out of range. Use a number %s.", n, s, ports))
	case host == "" && !rule.listen:
		return bad("Missing host", fmt.Sprintf("%q names no host to connect to. Add one, e.g. %q.", s, rule.example))
	}
	return s
}

// freePort reports whether addr asks for a free port (port 0).
func freePort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n == 0
}

// suggest returns the name in names closest to given, if one is close.
func suggest(given string, names []string) string {
	for _, n := range names {
		if strings.EqualFold(given, n) {
			return n
		}
	}
	for _, n := range names {
		if levenshtein.Distance(given, n, nil) < 3 {
			return n
		}
	}
	return ""
}

// quoteList returns "a", "b", "c".
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
