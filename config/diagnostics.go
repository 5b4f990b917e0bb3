package config

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/mitchellh/go-wordwrap"
)

// Error is the error Parse and LoadFile return for a configuration that does
// not parse or does not validate. Diags holds every diagnostic found, errors
// and warnings, in file order; Files holds the parsed sources, so that
// WriteDiagnostics can show the lines that each diagnostic points at.
type Error struct {
	Diags hcl.Diagnostics
	Files map[string]*hcl.File
}

// Error returns one line per diagnostic, the first line of WriteDiagnostics
// and the detail:
//
//	FILE:LINE:COL: error: Summary; Detail
//
// with "warning" for a warning; a block that the diagnostic suggests
// writing follows on the next lines, indented.
func (e *Error) Error() string {
	var b strings.Builder
	for i, d := range e.Diags {
		if i > 0 {
			b.WriteByte('\n')
		}
		if d.Subject != nil {
			b.WriteString(position(*d.Subject))
			b.WriteString(": ")
		}
		if d.Severity == hcl.DiagWarning {
			b.WriteString("warning: ")
		} else {
			b.WriteString("error: ")
		}
		b.WriteString(d.Summary)
		if d.Detail != "" {
			b.WriteString("; ")
			b.WriteString(d.Detail)
		}
		if f := fixOf(d); f != "" {
			b.WriteString("\n" + indent(f))
		}
	}
	return b.String()
}

// WriteDiagnostics writes err to w in the long form people read, each
// diagnostic once:
//
//	FILE:LINE:COL: error: Summary
//	  in listener "c2s":
//	   4:   adress  = "0.0.0.0:5222"
//
//	Detail, wrapped at width columns (0: no wrapping).
//
// The first line, compiler-style, is what editors and CI logs link to
// ("warning" for a warning); then the block the position is in, if any, and
// the source lines the diagnostic points at; then the detail, and the block
// of HCL it suggests writing, if any, indented and never wrapped. With color set,
// the severity is red or yellow and the part of the line the diagnostic
// points at is bold and underlined (ANSI escapes). A blank line ends each
// diagnostic. WriteDiagnostics takes the error of Parse or LoadFile, or the
// result of Config.Warnings; any other non-nil error is written as one
// "Error:" line. A nil err writes nothing. The returned error is a failure
// to write.
func WriteDiagnostics(w io.Writer, err error, width uint, color bool) error {
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		_, werr := fmt.Fprintf(w, "Error: %v\n", err)
		return werr
	}
	var b strings.Builder
	for _, d := range e.Diags {
		writeDiagnostic(&b, d, e.Files, width, color)
	}
	_, werr := io.WriteString(w, b.String())
	return werr
}

// writeDiagnostic writes d to b as WriteDiagnostics describes, with the
// source lines from files.
func writeDiagnostic(b *strings.Builder, d *hcl.Diagnostic, files map[string]*hcl.File, width uint, color bool) {
	sev, on, off, em := "error", "", "", ""
	if d.Severity == hcl.DiagWarning {
		sev = "warning"
	}
	if color {
		on, off, em = "\x1b[31m", "\x1b[0m", "\x1b[1;4m"
		if d.Severity == hcl.DiagWarning {
			on = "\x1b[33m"
		}
	}
	if d.Subject != nil {
		b.WriteString(position(*d.Subject) + ": ")
	}
	fmt.Fprintf(b, "%s%s%s: %s\n", on, sev, off, d.Summary)
	if d.Subject != nil {
		writeSnippet(b, *d.Subject, d.Context, files[d.Subject.Filename], em, off)
	}
	// hcl's writer would also list the variables of d.Expression with their
	// values; Guard evaluates every expression without variables, so there
	// are none.
	if d.Detail != "" {
		detail := d.Detail
		if width != 0 {
			detail = wordwrap.WrapString(detail, width)
		}
		b.WriteString("\n" + detail + "\n")
	}
	if f := fixOf(d); f != "" {
		b.WriteString("\n" + indent(f) + "\n")
	}
	b.WriteString("\n")
}

// indent puts four spaces before each line of s.
func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// writeSnippet writes the lines of file that subject and context cover,
// numbered, with subject between em and off; before them, the block they
// are in (`  in listener "c2s":`), if any. Without the source, it writes
// nothing: the position is on the first line already.
func writeSnippet(b *strings.Builder, subject hcl.Range, context *hcl.Range, file *hcl.File, em, off string) {
	if file == nil || file.Bytes == nil {
		return
	}
	snip, mark := subject, subject
	if context != nil {
		snip = hcl.RangeOver(snip, *context)
	}
	// An empty range shows as the one character where it starts.
	for _, r := range []*hcl.Range{&snip, &mark} {
		if r.Empty() {
			r.End.Byte++
			r.End.Column++
		}
	}
	if nav, ok := file.Nav.(interface{ ContextString(offset int) string }); ok {
		if in := nav.ContextString(subject.Start.Byte); in != "" {
			fmt.Fprintf(b, "  in %s:\n", in)
		}
	}
	sc := hcl.NewRangeScanner(file.Bytes, subject.Filename, bufio.ScanLines)
	for sc.Scan() {
		line := sc.Range()
		if !line.Overlaps(snip) {
			continue
		}
		before, marked, after := line.PartitionAround(mark)
		if marked.Empty() {
			fmt.Fprintf(b, "%4d: %s\n", line.Start.Line, sc.Bytes())
			continue
		}
		fmt.Fprintf(b, "%4d: %s%s%s%s%s\n", line.Start.Line, before.SliceBytes(file.Bytes),
			em, marked.SliceBytes(file.Bytes), off, after.SliceBytes(file.Bytes))
	}
}

// position writes where r starts as FILE:LINE:COL, the one form every
// position in Guard's diagnostics takes.
func position(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

// newError returns the *Error of diags, found in files: in reading order,
// and with the positions that hcl writes into its details as ranges
// (FILE:LINE,COL-COL, "already set at ...") written FILE:LINE:COL, as
// every other position.
func newError(diags hcl.Diagnostics, files map[string]*hcl.File) *Error {
	sortDiagnostics(diags)
	for name := range files {
		re := regexp.MustCompile(regexp.QuoteMeta(name) + `:(\d+),(\d+)-\d+(?:,\d+)?`)
		for _, d := range diags {
			d.Detail = re.ReplaceAllString(d.Detail, name+":${1}:${2}")
		}
	}
	return &Error{Diags: diags, Files: files}
}

// sortDiagnostics puts diags in reading order: by file, then by position, with
// the diagnostics that point nowhere last. hcl reports unknown arguments in
// map order, so sorting is also what makes the output stable.
func sortDiagnostics(diags hcl.Diagnostics) {
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		switch {
		case a.Subject == nil && b.Subject == nil:
			return 0
		case a.Subject == nil:
			return 1
		case b.Subject == nil:
			return -1
		}
		return cmp.Or(
			cmp.Compare(a.Subject.Filename, b.Subject.Filename),
			cmp.Compare(a.Subject.Start.Byte, b.Subject.Start.Byte),
			cmp.Compare(a.Subject.End.Byte, b.Subject.End.Byte),
		)
	})
}

// A fix is HCL that a diagnostic suggests writing, in its Extra, when the
// suggestion spans lines (a whole block) and cannot be part of the detail's
// sentences. WriteDiagnostics writes it under the detail, indented; Error
// on the lines after the diagnostic's. Every fix, like every snippet in a
// detail, parses as HCL (TestFixesParse).
type fix string

// fixOf returns the fix of d, or "".
func fixOf(d *hcl.Diagnostic) string {
	f, _ := d.Extra.(fix)
	return string(f)
}
