package optoutd_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The layering of docs/architecture.md, as rules over the import graph that
// `go list -deps -json ./...` reports. Each rule names the packages it
// governs and what they must not reach: through their own imports only
// ("imports"), or through anything they link ("links"). Test files are not
// part of the graph: a test may import what its package may not.

const module = "github.com/optoutd/optoutd"

type listedPackage struct {
	ImportPath string
	Dir        string
	Name       string
	Standard   bool
	Imports    []string
	GoFiles    []string
	Module     *struct{ Path string }
}

// loadGraph runs go list in the module root (this package's directory).
func loadGraph(t *testing.T) map[string]*listedPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Dir,Name,Standard,Imports,GoFiles,Module", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	g := map[string]*listedPackage{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		g[p.ImportPath] = &p
	}
	if g[module] == nil || g[module+"/cluster"] == nil {
		t.Fatalf("go list found no product packages (%d packages)", len(g))
	}
	return g
}

// ours reports whether path is a package of this module.
func ours(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

// under reports whether path is the product package dir or one below it.
func under(path string, dirs ...string) bool {
	for _, d := range dirs {
		if p := module + "/" + d; path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// generated reports whether path is generated wire code (api/gen,
// cluster/gen, command/gen): message and service types, no behaviour.
func generated(path string) bool {
	return under(path, "api/gen", "cluster/gen", "command/gen")
}

// wireOnly is what reaching the product "over the wire" may use: the Go
// client, the generated wire types, the header names and the receipt's
// text form (receipt: encoding and signatures over the wire types only).
func wireOnly(path string) bool {
	return under(path, "client", "api/wire", "receipt") || generated(path)
}

func networking(path string) bool {
	return path == "net" || strings.HasPrefix(path, "net/") || path == "crypto/tls" ||
		strings.HasPrefix(path, "connectrpc.com/") || strings.HasPrefix(path, "google.golang.org/grpc")
}

func storageOrRaft(path string) bool {
	return strings.HasPrefix(path, "go.etcd.io/bbolt") || strings.HasPrefix(path, "github.com/hashicorp/raft")
}

// harnessOnly are modules that only the chaos suite and the tests need;
// they share go.mod with the product (see docs/architecture.md, "Modules"),
// so the shipped binaries must not link them. (golang.org/x/term is not
// among them: optoutctl import's progress bar asks whether stderr is a
// terminal.)
func harnessOnly(path string) bool {
	for _, m := range []string{"gonum.org/v1/plot", "github.com/anishathalye/porcupine",
		"pgregory.net/rapid", "github.com/cockroachdb/datadriven", "go.yaml.in/yaml"} {
		if path == m || strings.HasPrefix(path, m+"/") {
			return true
		}
	}
	return false
}

type importRule struct {
	name      string
	governs   func(pkg string) bool
	linksOnly bool // false: checks the package's own imports only
	forbidden func(dep string) bool
}

func pkgIs(paths ...string) func(string) bool {
	return func(p string) bool {
		for _, x := range paths {
			if p == module+"/"+x || (x == "" && p == module) {
				return true
			}
		}
		return false
	}
}

func pkgUnder(dirs ...string) func(string) bool {
	return func(p string) bool { return under(p, dirs...) && !generated(p) }
}

var importRules = []importRule{
	{"the root package imports nothing of the product", pkgIs(""), true,
		func(d string) bool { return ours(d) }},
	{"fsm imports no networking", pkgIs("fsm"), false, networking},
	{"fsm never reaches cluster, api or anything built on them", pkgIs("fsm"), true,
		func(d string) bool {
			return under(d, "cluster", "api", "store", "offline", "client", "cmd", "security")
		}},
	{"command is the schema: the domain and its generated code only, no storage, Raft or networking", pkgIs("command"), true,
		func(d string) bool {
			return (ours(d) && d != module && !under(d, "command/gen")) || storageOrRaft(d) || networking(d)
		}},
	{"snapfile links the generated schema only: no bbolt, no Raft", pkgIs("snapfile"), true,
		func(d string) bool { return (ours(d) && !under(d, "command/gen")) || storageOrRaft(d) }},
	{"cluster never reaches api or anything above it", pkgUnder("cluster"), true,
		func(d string) bool { return under(d, "api", "store", "offline", "client", "cmd") }},
	{"api talks to the cluster through its own interfaces: the domain, its generated code and wire names only", pkgUnder("api"), true,
		func(d string) bool {
			return ours(d) && d != module && !under(d, "api/gen", "api/wire", "receipt", "judge")
		}},
	{"receipt links the wire types only", pkgIs("receipt"), true,
		func(d string) bool { return ours(d) && !under(d, "api/gen") }},
	{"judge links the domain, receipts and the wire types only", pkgIs("judge"), true,
		func(d string) bool { return ours(d) && d != module && !under(d, "api/gen", "receipt") }},
	{"store sits below the API", pkgIs("store"), true,
		func(d string) bool { return under(d, "api", "client", "offline", "cmd") }},
	{"offline sits below the API", pkgIs("offline"), true,
		func(d string) bool { return under(d, "api", "store", "client", "cmd") }},
	{"client imports neither server nor state-machine packages", pkgUnder("client"), true,
		func(d string) bool { return ours(d) && d != module && !under(d, "api/gen", "api/wire", "client") }},
	{"cmd/optoutctl links no bbolt, no hashicorp/raft and no state machine", pkgIs("cmd/optoutctl"), true,
		func(d string) bool {
			return storageOrRaft(d) || under(d, "fsm", "cluster", "store", "offline") ||
				(under(d, "command", "api") && !generated(d) && !under(d, "api/wire"))
		}},
	{"jepsen imports of the product only the client and the wire types", pkgUnder("jepsen"), false,
		func(d string) bool { return ours(d) && !under(d, "jepsen") && !wireOnly(d) }},
	{"jepsen links no server or state-machine package", pkgUnder("jepsen"), true,
		func(d string) bool {
			return (under(d, "api", "cluster", "command") && !generated(d) && !under(d, "api/wire")) ||
				under(d, "fsm", "snapfile", "store", "offline", "cmd")
		}},
	{"the shipped binaries link none of the harness's dependencies", pkgIs("cmd/optoutd", "cmd/optoutctl"), true, harnessOnly},
	{"security and internal packages import nothing of the product", pkgUnder("security", "internal"), true,
		func(d string) bool { return ours(d) && !under(d, "security", "internal") }},
}

// TestImportRules fails when a package crosses a boundary of the layering,
// naming the import chain that does.
func TestImportRules(t *testing.T) {
	g := loadGraph(t)
	var paths []string
	for p := range g {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, r := range importRules {
		t.Run(r.name, func(t *testing.T) {
			governed := 0
			for _, p := range paths {
				if !ours(p) || !r.governs(p) {
					continue
				}
				governed++
				if chain := violation(g, p, r); chain != nil {
					t.Errorf("%s: %s", r.name, strings.Join(chain, " -> "))
				}
			}
			if governed == 0 {
				t.Errorf("%s governs no package: is the rule stale?", r.name)
			}
		})
	}
}

// violation returns the shortest import chain from p to a forbidden
// package, or nil.
func violation(g map[string]*listedPackage, p string, r importRule) []string {
	if !r.linksOnly {
		for _, d := range g[p].Imports {
			if r.forbidden(d) {
				return []string{p, d}
			}
		}
		return nil
	}
	prev := map[string]string{p: ""}
	queue := []string{p}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		pkg := g[cur]
		if pkg == nil {
			continue
		}
		for _, d := range pkg.Imports {
			if _, seen := prev[d]; seen {
				continue
			}
			prev[d] = cur
			if r.forbidden(d) {
				var chain []string
				for at := d; at != ""; at = prev[at] {
					chain = append([]string{at}, chain...)
				}
				return chain
			}
			queue = append(queue, d)
		}
	}
	return nil
}

// TestEveryPackageHasADocFile: every package of the product but generated
// code has a doc.go saying what it is for.
func TestEveryPackageHasADocFile(t *testing.T) {
	for path, p := range loadGraph(t) {
		if !ours(path) || generated(path) {
			continue
		}
		if _, err := os.Stat(filepath.Join(p.Dir, "doc.go")); err != nil {
			t.Errorf("%s has no doc.go", path)
		}
	}
}
