package proxy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The package's shape is kept, not only drawn once: every step of a
// connection in a file a reader can find by its name, files and functions
// short enough to read whole, and the Linux-only code (epoll, socket
// options) in *_linux.go files.
const (
	maxFileLines = 450
	maxFuncLines = 80
)

func TestLayout(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fs := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fs, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if n := fs.File(f.Pos()).LineCount(); n > maxFileLines {
			t.Errorf("%s has %d lines; at most %d: split it by step", name, n, maxFileLines)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			if n := fs.Position(fd.End()).Line - fs.Position(fd.Pos()).Line + 1; n > maxFuncLines {
				t.Errorf("%s: %s has %d lines; at most %d", name, fd.Name.Name, n, maxFuncLines)
			}
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == "golang.org/x/sys/unix" && !strings.HasSuffix(name, "_linux.go") {
				t.Errorf("%s imports %s: Linux-only code belongs in a *_linux.go file", name, path)
			}
		}
		if !hasJobComment(f) {
			t.Errorf("%s has no comment saying its job", name)
		}
	}
}

// hasJobComment reports whether a file says what it is for: the package
// doc, or a comment of its own (not a declaration's doc) before its first
// declaration after the imports.
func hasJobComment(f *ast.File) bool {
	if f.Doc != nil {
		return true
	}
	var first ast.Decl
	var doc *ast.CommentGroup
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT {
			continue
		}
		first = d
		switch d := d.(type) {
		case *ast.GenDecl:
			doc = d.Doc
		case *ast.FuncDecl:
			doc = d.Doc
		}
		break
	}
	for _, c := range f.Comments {
		if (first == nil || c.Pos() < first.Pos()) && c != doc && !strings.HasPrefix(c.Text(), "go:build") && !strings.HasPrefix(c.List[0].Text, "//go:build") {
			return true
		}
	}
	return false
}
