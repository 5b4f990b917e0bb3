package config

import (
	"fmt"
	"math"
	"math/big"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

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

// warnf adds a warning at subject, like errorf.
func (d *decoder) warnf(subject hcl.Range, context *hcl.Range, summary, detail string) {
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  summary,
		Detail:   detail,
		Subject:  subject.Ptr(),
		Context:  context,
	})
}

// withFix attaches f, the HCL of a block to write, to the diagnostic added
// last; its detail ends with the words that introduce it ("for example:").
func (d *decoder) withFix(f string) {
	d.diags[len(d.diags)-1].Extra = fix(f)
}

// reported reports whether a diagnostic already points into a, so that a
// check that depends on a's value does not report its default.
func (d *decoder) reported(a *hcl.Attribute) bool {
	for _, diag := range d.diags {
		if s := diag.Subject; s != nil && s.Filename == a.Range.Filename && a.Range.ContainsOffset(s.Start.Byte) {
			return true
		}
	}
	return false
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
		for _, h := range schema.Blocks {
			found := diag.Summary == "Extraneous label for "+h.Type
			for _, l := range h.LabelNames {
				found = found || diag.Summary == fmt.Sprintf("Missing %s for %s", l, h.Type)
			}
			if found {
				form := h.Type
				for _, l := range h.LabelNames {
					form += fmt.Sprintf(" %q", strings.ToUpper(l))
				}
				diag.Detail += fmt.Sprintf(" Write it as %s {}, with the block's content between the braces.", form)
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
				b.Type, position(blocks[0].DefRange)))
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
				article(b.Type), b.Type, name, position(f.DefRange)))
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
		valid := strings.Map(nameRune, name)
		if valid == "" {
			valid = "c2s" // a listener's name; a backend's below
			if b.Type == "backend" {
				valid = "xmpp"
			}
		}
		d.errorf(b.LabelRanges[0], &b.DefRange, fmt.Sprintf("Invalid %s name", b.Type),
			fmt.Sprintf(`%q is not a valid name. Use letters, digits, "-", "_" and "." only, e.g. %s %q {}.`,
				name, b.Type, valid))
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

// required returns attrs[name], reporting its absence at b; a key set to
// null is absent.
func (d *decoder) required(b *hcl.Block, attrs hcl.Attributes, name, example string) *hcl.Attribute {
	a := present(attrs[name])
	if a == nil {
		d.errorf(b.DefRange, nil, "Missing required argument",
			fmt.Sprintf("%s has no %s. Add one, e.g. %s = %q.", blockName(b), name, name, example))
	}
	return a
}

// present returns a, or nil when a is nil or set to null, which is the same
// as leaving the key out.
func present(a *hcl.Attribute) *hcl.Attribute {
	if a == nil {
		return nil
	}
	if v, diags := a.Expr.Value(nil); !diags.HasErrors() && v.IsNull() {
		return nil
	}
	return a
}

// value evaluates a as a string constant. ok is false when a is absent or
// null (the caller uses its default) and when a is not a constant that
// converts to a string (reported, with example as the form to use).
func (d *decoder) value(a *hcl.Attribute, example string) (s string, ok bool) {
	v, ok := d.constant(a, true)
	if !ok {
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

// constant evaluates a, which must be a constant. ok is false when a is
// absent or null, and when a is not a constant (reported). A bare word, which
// reads as a variable, gets the advice to quote it if quote is set.
func (d *decoder) constant(a *hcl.Attribute, quote bool) (v cty.Value, ok bool) {
	if a == nil {
		return cty.NilVal, false
	}
	v, diags := a.Expr.Value(nil)
	for _, diag := range diags {
		// A bare word such as `level = info` reads as a variable.
		if t, isVar := a.Expr.(*hclsyntax.ScopeTraversalExpr); quote && isVar && diag.Summary == "Variables not allowed" && len(t.Traversal) == 1 {
			diag.Detail += fmt.Sprintf(" To write the word as text, put it in quotes: %s = %s.", a.Name, hclString(t.Traversal.RootName()))
		}
	}
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
		return cty.NilVal, false
	}
	return v, true
}

// kind names t for people who write HCL rather than cty.
func kind(t cty.Type) string {
	switch {
	case t.IsTupleType() || t.IsListType() || t.IsSetType():
		return "a list"
	case t.IsObjectType() || t.IsMapType():
		return "an object"
	case t == cty.String:
		return "a string"
	case t == cty.Bool:
		return "true or false"
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

// enum returns the value of a, one of allowed by its name (String), or
// def; as oneOf, which reports a name that is none of them.
func enum[T fmt.Stringer](d *decoder, a *hcl.Attribute, def T, what string, allowed ...T) T {
	names := make([]string, len(allowed))
	for i, v := range allowed {
		names[i] = v.String()
	}
	if i := slices.Index(names, d.oneOf(a, def.String(), what, names...)); i >= 0 {
		return allowed[i]
	}
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
		detail := fmt.Sprintf("%s = %s is negative.", a.Name, hclString(s))
		if rule.zero != "" {
			detail += fmt.Sprintf(` Use "0s" to %s, or a positive duration such as %q.`, rule.zero, rule.example)
		} else {
			detail += fmt.Sprintf(" Use a positive duration such as %q.", rule.example)
		}
		d.errorf(a.Expr.Range(), &a.Range, "Negative duration", detail)
		return rule.def
	case v == 0 && rule.zero == "":
		detail := fmt.Sprintf("%s must be greater than zero. Use a positive duration such as %q", a.Name, rule.example)
		if rule.def > 0 { // else the key is required
			detail += fmt.Sprintf(", or leave it out for the default, %s", rule.def)
		}
		d.errorf(a.Expr.Range(), &a.Range, "Duration must be positive", detail+".")
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
	zero          string // what 0 does, below min, e.g. "set no limit"; "" if 0 is not allowed
	example       string // a typical value, e.g. "256KiB"
}

// size parses the value of a as a number of bytes, such as "512B", "4KiB",
// "1MB", within rule.min and rule.max.
func (d *decoder) size(a *hcl.Attribute, rule sizeRule) int {
	s, ok := d.value(a, rule.example)
	if !ok {
		return rule.def
	}
	return d.parseSize(a, s, "", rule)
}

// byteRate parses the value of a as a number of bytes a second, written as
// a size and "/s", such as "64KiB/s", within rule.min and rule.max.
func (d *decoder) byteRate(a *hcl.Attribute, rule sizeRule) int {
	s, ok := d.value(a, rule.example+"/s")
	if !ok {
		return rule.def
	}
	size, found := strings.CutSuffix(s, "/s")
	if !found {
		detail := fmt.Sprintf("%q is not a byte rate: write a size a second, such as %q.", s, rule.example+"/s")
		if num, per, ok := strings.Cut(s, "/"); ok {
			detail = fmt.Sprintf("%q is not a byte rate: the rate is per second only, not per %q. Write a size a second, e.g. %q.",
				s, per, strings.TrimSpace(num)+"/s")
		} else if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			detail = fmt.Sprintf("%q has no unit and no \"/s\". For bytes a second, write %q", s, s+"B/s")
			if n > 0 && n%kiB == 0 {
				detail += fmt.Sprintf(", or %q", strconv.Itoa(n/kiB)+"KiB/s")
			}
			detail += "."
		} else if strings.TrimSpace(s) != "" {
			detail = fmt.Sprintf("%q has no \"/s\". A byte rate is a size a second: write %q.", s, strings.TrimSpace(s)+"/s")
		}
		d.errorf(a.Expr.Range(), &a.Range, "Invalid byte rate", detail)
		return rule.def
	}
	return d.parseSize(a, size, "/s", rule)
}

// parseSize parses s, the value of a without its suffix ("" for a size,
// "/s" for a byte rate), as a number of bytes within rule.min and rule.max.
func (d *decoder) parseSize(a *hcl.Attribute, s, suffix string, rule sizeRule) int {
	bad := func(summary, detail string) int {
		d.errorf(a.Expr.Range(), &a.Range, summary, detail)
		return rule.def
	}
	form := fmt.Sprintf(`Use a whole number with a unit, B, KB, KiB, MB or MiB (1KB = 1000 bytes, 1KiB = 1024): %q, %q, %q.`,
		"512B"+suffix, "4KiB"+suffix, "256KiB"+suffix)
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
		detail := fmt.Sprintf("%q has no unit. For bytes, write %q", s, s+"B"+suffix)
		if n, err := strconv.Atoi(num); err == nil && n > 0 && n%kiB == 0 {
			detail += fmt.Sprintf(", or %q", strconv.Itoa(n/kiB)+"KiB"+suffix)
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
			detail += fmt.Sprintf(" Write the number and the unit without a space: %q.", num+t+suffix)
		} else if sug := suggest(unit, names); strings.EqualFold(sug, unit) {
			detail += fmt.Sprintf(" Units are case-sensitive: did you mean %q?", num+sug+suffix)
		}
		return bad("Invalid size", detail+" "+form)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	bytes := n * per
	if err != nil || n > math.MaxInt64/per || n < math.MinInt64/per {
		// Too many digits for any size: certainly above the maximum.
		bytes = math.MaxInt64
	}
	if bytes == 0 && rule.zero != "" {
		return 0
	}
	if bytes < int64(rule.min) || bytes > int64(rule.max) {
		given := fmt.Sprintf("%s = %s", a.Name, hclString(s+suffix))
		if unit != "B" && bytes != math.MaxInt64 {
			given += fmt.Sprintf(" (%d bytes)", bytes)
		}
		than := "less than the smallest allowed, " + describeSize(rule.min, suffix)
		if bytes > int64(rule.max) {
			than = "more than the largest allowed, " + describeSize(rule.max, suffix)
		}
		or := fmt.Sprintf("leave it out for the default, %s", formatSize(rule.def)+suffix)
		if rule.zero != "" {
			or = fmt.Sprintf("%q to %s", "0B"+suffix, rule.zero)
		}
		return bad("Size out of range", fmt.Sprintf("%s is %s. Use a size from %s to %s, such as %q, or %s.",
			given, than, formatSize(rule.min)+suffix, formatSize(rule.max)+suffix, rule.example+suffix, or))
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

// describeSize is formatSize, then suffix, with the number of bytes where
// that differs: "16MiB (16777216 bytes)", "1KiB/s (1024 bytes)", "512B".
func describeSize(n int, suffix string) string {
	f := formatSize(n) + suffix
	if n != 0 && n%kiB == 0 {
		f += fmt.Sprintf(" (%d bytes)", n)
	}
	return f
}

// numberRule says what a number attribute (written without quotes) accepts.
type numberRule struct {
	def, min, max float64
	whole         bool   // only whole numbers (count sets it)
	zero          string // what 0 does when min is 0, e.g. "set no cap"
	example       string // a typical value, e.g. "5000"
}

// count returns the value of a, a whole number within rule.min and rule.max,
// or rule.def.
func (d *decoder) count(a *hcl.Attribute, rule numberRule) int {
	rule.whole = true
	return int(d.number(a, rule))
}

// number returns the value of a, a number within rule.min and rule.max, or
// rule.def. A number in quotes is an error: numbers are the one kind of
// value written without them.
func (d *decoder) number(a *hcl.Attribute, rule numberRule) float64 {
	v, ok := d.constant(a, false)
	if !ok {
		return rule.def
	}
	bad := func(summary, detail string) float64 {
		d.errorf(a.Expr.Range(), &a.Range, summary, detail)
		return rule.def
	}
	if v.Type() != cty.Number {
		detail := fmt.Sprintf("%s must be a number, not %s, e.g. %s = %s.", a.Name, kind(v.Type()), a.Name, rule.example)
		if v.Type() == cty.String {
			if n, err := convert.Convert(v, cty.Number); err == nil {
				detail = fmt.Sprintf("%s must be a number, written without quotes: %s = %s.", a.Name, a.Name, formatNumber(n.AsBigFloat()))
			}
		}
		return bad("Incorrect argument type", detail)
	}
	n := v.AsBigFloat()
	given := fmt.Sprintf("%s = %s", a.Name, formatNumber(n))
	span := fmt.Sprintf("a number from %s to %s", formatFloat(rule.min), formatFloat(rule.max))
	if rule.whole {
		span = "a whole number from " + span[len("a number from "):]
	}
	switch {
	case rule.whole && !n.IsInt():
		return bad("Invalid number", fmt.Sprintf("%s is not a whole number. Use %s, such as %s.", given, span, rule.example))
	case n.Sign() < 0 && rule.min == 0:
		detail := given + " is negative."
		if rule.zero != "" {
			detail += fmt.Sprintf(" Use 0 to %s, or a positive number such as %s.", rule.zero, rule.example)
		} else {
			detail += fmt.Sprintf(" Use a positive number such as %s.", rule.example)
		}
		return bad("Negative number", detail)
	case n.Cmp(big.NewFloat(rule.min)) < 0 || n.Cmp(big.NewFloat(rule.max)) > 0:
		than := "less than the smallest allowed, " + formatFloat(rule.min)
		if n.Cmp(big.NewFloat(rule.max)) > 0 {
			than = "more than the largest allowed, " + formatFloat(rule.max)
		}
		or := "leave it out for the default, " + formatFloat(rule.def)
		if rule.zero != "" {
			or = "0 to " + rule.zero
		}
		return bad("Number out of range", fmt.Sprintf("%s is %s. Use %s, such as %s, or %s.", given, than, span, rule.example, or))
	}
	f, _ := n.Float64()
	return f
}

// boolean returns the value of a, true or false written without quotes, or
// def. Like a number, a switch in quotes is an error that says to remove
// them.
func (d *decoder) boolean(a *hcl.Attribute, def bool) bool {
	v, ok := d.constant(a, false)
	if !ok {
		return def
	}
	if v.Type() == cty.Bool {
		return v.True()
	}
	detail := fmt.Sprintf("%s must be true or false, not %s, e.g. %s = %t.", a.Name, kind(v.Type()), a.Name, !def)
	if v.Type() == cty.String {
		if b, err := convert.Convert(v, cty.Bool); err == nil {
			detail = fmt.Sprintf("%s must be true or false, written without quotes: %s = %t.", a.Name, a.Name, b.True())
		}
	}
	d.errorf(a.Expr.Range(), &a.Range, "Incorrect argument type", detail)
	return def
}

// formatNumber writes n as HCL would read it back: "5000", "2.5", "1e+30".
func formatNumber(n *big.Float) string {
	if f, _ := n.Float64(); math.Abs(f) < 1e15 {
		return formatFloat(f)
	}
	return n.Text('g', 10)
}

// formatFloat writes f without an exponent: "1000000", "0.5".
func formatFloat(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// rateRule says what a rate attribute accepts.
type rateRule struct {
	def, max float64 // a second
	example  string  // a typical value, e.g. "5/s"
}

// rateUnits are the units of time a rate may be written in, with their
// length in seconds.
var rateUnits = []struct {
	name    string
	seconds float64
}{{"s", 1}, {"m", 60}, {"h", 3600}}

// rateWords maps ways people write units of time, in lower case, to the
// unit of rateUnits they mean.
var rateWords = map[string]string{
	"s": "s", "sec": "s", "secs": "s", "second": "s", "seconds": "s",
	"m": "m", "min": "m", "mins": "m", "minute": "m", "minutes": "m",
	"h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
}

// rate parses the value of a, such as "5/s", "30/m" or "100/h", as a rate a
// second within rule.max; "0/s" (in any unit) means no limit.
func (d *decoder) rate(a *hcl.Attribute, rule rateRule) float64 {
	s, ok := d.value(a, rule.example)
	if !ok {
		return rule.def
	}
	bad := func(summary, detail string) float64 {
		d.errorf(a.Expr.Range(), &a.Range, summary, detail)
		return rule.def
	}
	const form = `Write a number, a slash and a unit of time, s (a second), m (a minute) or h (an hour), ` +
		`without spaces: "5/s", "30/m", "100/h"; "0/s" for no limit.`
	num, unit, found := strings.Cut(s, "/")
	if !found {
		detail := fmt.Sprintf("%q is not a rate.", s)
		if decimal(strings.TrimSpace(s)) {
			detail = fmt.Sprintf("%q has no unit of time. For a number a second, write %q.", s, strings.TrimSpace(s)+"/s")
		}
		return bad("Invalid rate", detail+" "+form)
	}
	var seconds float64
	for _, u := range rateUnits {
		if unit == u.name {
			seconds = u.seconds
		}
	}
	tnum := strings.TrimPrefix(strings.TrimSpace(num), "-")
	if seconds == 0 || !decimal(strings.TrimPrefix(num, "-")) {
		detail := fmt.Sprintf("%q is not a rate.", s)
		if w, ok := rateWords[strings.ToLower(strings.TrimSpace(unit))]; ok && decimal(tnum) {
			detail += fmt.Sprintf(" Did you mean %q?", strings.TrimSpace(num)+"/"+w)
		} else if seconds == 0 {
			detail = fmt.Sprintf("%q is not a rate: %q is not a unit of time.", s, unit)
		} else {
			detail = fmt.Sprintf("%q is not a rate: %q is not a number.", s, num)
		}
		return bad("Invalid rate", detail+" "+form)
	}
	n, err := strconv.ParseFloat(num, 64)
	perSecond := n / seconds
	switch {
	case n < 0:
		return bad("Negative rate", fmt.Sprintf(`%s = %s is negative. Use "0/s" for no limit, or a positive rate such as %q.`,
			a.Name, hclString(s), rule.example))
	case err != nil || perSecond > rule.max:
		return bad("Rate out of range", fmt.Sprintf(`%s = %s is more than the largest allowed, %s/s. `+
			`Use a rate such as %q, or "0/s" for no limit.`, a.Name, hclString(s), formatFloat(rule.max), rule.example))
	}
	return perSecond
}

// decimal reports whether s is a number in decimal notation without a
// sign: digits, and maybe a point and more digits.
func decimal(s string) bool {
	whole, frac, _ := strings.Cut(s, ".")
	digits := func(t string) bool { return strings.Trim(t, "0123456789") == "" }
	return whole != "" && digits(whole) && digits(frac) && !strings.HasSuffix(s, ".")
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
	return d.addressAt(s, a.Expr.Range(), &a.Range, def, rule)
}

// addressAt returns s, a host:port with a numeric port, or def, reporting
// a bad s at subject within context: the value of an attribute, or the
// label of a block (a backend's node).
func (d *decoder) addressAt(s string, subject hcl.Range, context *hcl.Range, def string, rule addrRule) string {
	if s == "" && rule.optional {
		return ""
	}
	bad := func(summary, detail string) string {
		d.errorf(subject, context, summary, detail)
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

// Examples in messages.
const (
	exampleNode   = "10.0.0.1:5262"
	exampleDomain = "example.net"
)

// xmppDomain returns why name is not a DNS name that can be an XMPP domain
// (a route's label, a health check's domain), or "".
func xmppDomain(name string) string {
	switch {
	case strings.Contains(name, "*"):
		return "it is a wildcard; name each domain"
	case net.ParseIP(strings.Trim(name, "[]")) != nil:
		return "it is an IP address"
	}
	return dnsName(name)
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

// hclString quotes s as an HCL string, for the values that details suggest
// writing or echo back: like strconv.Quote, but with HCL's escapes (a
// control character is \uNNNN, never \xNN) and with "${" and "%{" doubled,
// so that the text is a constant, not a template. Bytes that are not UTF-8,
// which no HCL file holds, become U+FFFD.
func hclString(s string) string {
	var b strings.Builder
	s = strings.ToValidUTF8(s, "\uFFFD")
	b.WriteByte('"')
	for i, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < ' ' || r == 0x7f || !unicode.IsPrint(r) && r > 0x7f:
			if r > 0xffff {
				fmt.Fprintf(&b, `\U%08x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		case (r == '$' || r == '%') && strings.HasPrefix(s[i+1:], "{"):
			b.WriteRune(r)
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
