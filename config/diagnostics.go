package config

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Error is the error Parse and LoadFile return for a configuration that does
// not parse or does not validate. Diags holds every diagnostic found, errors
// and warnings, in file order; Files holds the parsed sources, so that
// WriteDiagnostics can show the lines that each diagnostic points at.
type Error struct {
	Diags hcl.Diagnostics
	Files map[string]*hcl.File
}

// Error returns one line per diagnostic:
//
//	FILE:LINE,COL-COL: Summary; Detail
//
// with "Warning: " before the summary of a warning.
func (e *Error) Error() string {
	var b strings.Builder
	for i, d := range e.Diags {
		if i > 0 {
			b.WriteByte('\n')
		}
		if d.Subject != nil {
			b.WriteString(d.Subject.String())
			b.WriteString(": ")
		}
		if d.Severity == hcl.DiagWarning {
			b.WriteString("Warning: ")
		}
		b.WriteString(d.Summary)
		if d.Detail != "" {
			b.WriteString("; ")
			b.WriteString(d.Detail)
		}
	}
	return b.String()
}

// WriteDiagnostics writes err to w in the long form people read: each
// diagnostic with its summary, the source lines it points at, and its detail
// wrapped at width columns (0: no wrapping), with ANSI colors if color is
// set. It takes the error of Parse or LoadFile, or the result of
// Config.Warnings; any other non-nil error is written as one "Error:" line.
// A nil err writes nothing. The returned error is a failure to write.
func WriteDiagnostics(w io.Writer, err error, width uint, color bool) error {
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		_, werr := fmt.Fprintf(w, "Error: %v\n", err)
		return werr
	}
	tw := hcl.NewDiagnosticTextWriter(w, e.Files, width, color)
	for _, d := range e.Diags {
		// A compiler-style first line, FILE:LINE:COL: severity: summary, that
		// editors and CI logs link to; then hcl's long form with the snippet.
		if d.Subject != nil {
			sev := "error"
			if d.Severity == hcl.DiagWarning {
				sev = "warning"
			}
			if _, err := fmt.Fprintf(w, "%s:%d:%d: %s: %s\n", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, sev, d.Summary); err != nil {
				return err
			}
		}
		if err := tw.WriteDiagnostic(d); err != nil {
			return err
		}
	}
	return nil
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
