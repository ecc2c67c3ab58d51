package fs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Every node type (a struct embedding gofs.Inode) answers statfs and
// access(2) itself: without Statfs go-fuse shows zeros and NAME_MAX 0,
// without Access root may "write" everything. The source is read, so a
// node type added later is checked too.
func TestEveryNodeAnswersStatfsAndAccess(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]bool{}
	methods := map[string]map[string]bool{}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					if ts, ok := spec.(*ast.TypeSpec); ok && embedsInode(ts) {
						nodes[ts.Name.Name] = true
					}
				}
			case *ast.FuncDecl:
				if d.Recv == nil || len(d.Recv.List) != 1 {
					continue
				}
				if star, ok := d.Recv.List[0].Type.(*ast.StarExpr); ok {
					if id, ok := star.X.(*ast.Ident); ok {
						if methods[id.Name] == nil {
							methods[id.Name] = map[string]bool{}
						}
						methods[id.Name][d.Name.Name] = true
					}
				}
			}
		}
	}
	if len(nodes) < 20 {
		t.Fatalf("found %d node types, want the tree's 20 and more", len(nodes))
	}
	var missing []string
	for n := range nodes {
		for _, m := range []string{"Statfs", "Access", "fill"} {
			if !methods[n][m] {
				missing = append(missing, n+"."+m)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("node types without their method (statfs.go, access.go): %v", missing)
	}
}

func embedsInode(ts *ast.TypeSpec) bool {
	st, ok := ts.Type.(*ast.StructType)
	if !ok {
		return false
	}
	for _, f := range st.Fields.List {
		if sel, ok := f.Type.(*ast.SelectorExpr); ok && len(f.Names) == 0 && sel.Sel.Name == "Inode" {
			return true
		}
	}
	return false
}

// A uid with no user any more is listed as @<uid> (jobs.UserName), and
// must look up under that name.
func TestOwnerUID(t *testing.T) {
	for _, c := range []struct {
		name string
		uid  uint64
		ok   bool
	}{
		{"root", 0, true},
		{"4242421", 4242421, true},
		{"no-such-user-here", 0, false},
		{"0042", 0, false},
	} {
		uid, ok := ownerUID(c.name)
		if ok != c.ok || ok && uid != c.uid {
			t.Errorf("ownerUID(%q) = %d, %v; want %d, %v", c.name, uid, ok, c.uid, c.ok)
		}
	}
}
