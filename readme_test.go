package multiproc_test

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestREADMEBuilds guards the first thing a user copies: every ```go block
// of README.md must compile. Blocks are built by this convention:
//
//   - A block whose first line starts with "package" is a whole file, built
//     as is (alone, in its own directory).
//   - Any other block is a fragment of a program. If it parses as
//     top-level declarations it is declarations; otherwise it is statements,
//     wrapped in a func body.
//   - A fragment is built together with the declarations of the fragments
//     above it, as if a reader pasted the blocks in order into one file:
//     a declaration replaces an earlier one of the same name (a second
//     func main replaces the first), and nothing else is removed. So a
//     block may use a function registered in an earlier block.
//   - Imports are not written in fragments: the standard packages and
//     multiproc that a fragment's code names are imported for it.
//
// The generated files carry //line directives, so a compile error names
// README.md and the line of the block. They are built with the go command
// in a hidden directory inside the module (so the module's own go.mod and
// dependencies resolve), removed afterwards.
func TestREADMEBuilds(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build with")
	}
	src, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlocks(string(src))
	if len(blocks) < 4 {
		t.Fatalf("found %d ```go blocks in README.md, want at least 4: is the extraction broken?", len(blocks))
	}
	dir, err := os.MkdirTemp(".", ".readme-") // "." hides it from ./... patterns
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	var decls []readmeDecl // the declarations pasted so far
	var pkgs []string
	for i, b := range blocks {
		var file string
		if strings.HasPrefix(b.text, "package ") {
			file = fmt.Sprintf("//line README.md:%d\n%s", b.line, b.text)
		} else {
			own, stmts, err := parseFragment(b)
			if err != nil {
				t.Errorf("README.md:%d: block is neither declarations nor statements: %v", b.line, err)
				continue
			}
			decls = pasteDecls(decls, own)
			file = fragmentFile(fmt.Sprintf("block%d", i+1), decls, stmts, b)
		}
		pkg := filepath.Join(dir, fmt.Sprintf("block%d", i+1))
		if err := os.Mkdir(pkg, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pkg, "main.go"), []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, "./"+filepath.ToSlash(pkg))
	}
	// With several packages, go build keeps nothing: a check, no files to
	// clean up.
	cmd := exec.Command(goTool, append([]string{"build"}, pkgs...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("README.md has Go blocks that do not compile (convention: see TestREADMEBuilds):\n%s", out)
	}
	if !t.Failed() {
		t.Logf("%d Go blocks of README.md compile", len(blocks))
	}
}

// readmeBlock is a ```go block: its text (dedented to its fence) and the
// README line of its first line.
type readmeBlock struct {
	text string
	line int
}

// goBlocks returns the ```go blocks of a Markdown text, fenced blocks
// inside list items (indented fences) included.
func goBlocks(md string) []readmeBlock {
	var out []readmeBlock
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimLeft(lines[i], " ")
		if trimmed != "```go" {
			continue
		}
		indent := len(lines[i]) - len(trimmed)
		var body []string
		start := i + 2 // 1-based line of the first code line
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			l := lines[i]
			if len(l) >= indent && strings.TrimLeft(l[:indent], " ") == "" {
				l = l[indent:]
			}
			body = append(body, l)
		}
		out = append(out, readmeBlock{text: strings.Join(body, "\n") + "\n", line: start})
	}
	return out
}

// readmeDecl is one top-level declaration of a fragment, with the names it
// declares.
type readmeDecl struct {
	names []string
	src   string
	line  int
}

// parseFragment splits a fragment into declarations, or returns it as
// statements (nil declarations) when it is not declarations.
func parseFragment(b readmeBlock) (decls []readmeDecl, stmts string, err error) {
	fset := token.NewFileSet()
	const header = "package main\n"
	f, derr := parser.ParseFile(fset, "", header+b.text, parser.SkipObjectResolution)
	if derr == nil {
		for _, d := range f.Decls {
			start := d.Pos()
			if doc := declDoc(d); doc != nil {
				start = doc.Pos()
			}
			from, to := fset.Position(start), fset.Position(d.End())
			decls = append(decls, readmeDecl{
				names: declNames(d),
				src:   b.text[from.Offset-len(header) : to.Offset-len(header)],
				line:  b.line + from.Line - 2, // the header is line 1
			})
		}
		return decls, "", nil
	}
	wrapped := header + "func _() {\n" + b.text + "\n}\n"
	if _, serr := parser.ParseFile(fset, "", wrapped, parser.SkipObjectResolution); serr != nil {
		return nil, "", fmt.Errorf("as declarations: %v; as statements: %v", derr, serr)
	}
	return nil, b.text, nil
}

func declDoc(d ast.Decl) *ast.CommentGroup {
	switch d := d.(type) {
	case *ast.FuncDecl:
		return d.Doc
	case *ast.GenDecl:
		return d.Doc
	}
	return nil
}

// declNames returns the names d declares; a method is named Type.Method.
func declNames(d ast.Decl) []string {
	var names []string
	switch d := d.(type) {
	case *ast.FuncDecl:
		name := d.Name.Name
		if d.Recv != nil && len(d.Recv.List) > 0 {
			name = types.ExprString(d.Recv.List[0].Type) + "." + name
		}
		names = append(names, name)
	case *ast.GenDecl:
		for _, s := range d.Specs {
			switch s := s.(type) {
			case *ast.ValueSpec:
				for _, n := range s.Names {
					names = append(names, n.Name)
				}
			case *ast.TypeSpec:
				names = append(names, s.Name.Name)
			}
		}
	}
	return slices.DeleteFunc(names, func(n string) bool { return n == "_" })
}

// pasteDecls appends a fragment's declarations to those pasted before,
// dropping the earlier ones that declare a name again.
func pasteDecls(before, own []readmeDecl) []readmeDecl {
	redeclared := map[string]bool{}
	for _, d := range own {
		for _, n := range d.names {
			redeclared[n] = true
		}
	}
	var out []readmeDecl
	for _, d := range before {
		if !slices.ContainsFunc(d.names, func(n string) bool { return redeclared[n] }) {
			out = append(out, d)
		}
	}
	return append(out, own...)
}

// readmeImports are the packages a fragment may use without importing.
var readmeImports = map[string]string{
	"context": "context", "errors": "errors", "fmt": "fmt", "iter": "iter", "log": "log",
	"os": "os", "slices": "slices", "strings": "strings", "sync": "sync", "testing": "testing",
	"time": "time", "multiproc": "github.com/multiproc-go/multiproc",
}

// fragmentFile renders decls (and stmts, in a func body) as package pkg,
// importing what they name. It is not package main, so that the go command
// compiles it without linking a program (seconds per block on a loaded
// machine); a func main in it is then an ordinary function, which
// compiles the same.
func fragmentFile(pkg string, decls []readmeDecl, stmts string, b readmeBlock) string {
	var body bytes.Buffer
	for _, d := range decls {
		fmt.Fprintf(&body, "//line README.md:%d\n%s\n\n", d.line, d.src)
	}
	if stmts != "" {
		fmt.Fprintf(&body, "func _() {\n//line README.md:%d\n%s\n}\n", b.line, stmts)
	}
	// The names a file uses but does not declare are its package references.
	used := map[string]bool{}
	if f, err := parser.ParseFile(token.NewFileSet(), "", "package main\n"+body.String(), 0); err == nil {
		for _, id := range f.Unresolved {
			used[id.Name] = true
		}
	}
	var file bytes.Buffer
	fmt.Fprintf(&file, "package %s\n\n", pkg)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range readmeImports {
			if used[n] && !yield(n) {
				return
			}
		}
	}) {
		fmt.Fprintf(&file, "import %q\n", readmeImports[name])
	}
	file.WriteString("\n")
	file.Write(body.Bytes())
	return file.String()
}
