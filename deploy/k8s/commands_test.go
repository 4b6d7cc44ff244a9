package k8s_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// docCommand is one command of a ```sh block, with where it came from.
type docCommand struct {
	where string
	words []string
}

func (c docCommand) String() string { return c.where + ": " + strings.Join(c.words, " ") }

// shCommands returns the commands of the ```sh blocks of file, only those
// under the "## " heading section if it is not empty; "\" continuations
// are joined and comments dropped.
func shCommands(t *testing.T, file, section string) []docCommand {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var out []docCommand
	inSection, inBlock, cur := section == "", false, ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```"):
			inBlock = !inBlock && line == "```sh" && inSection
		case inBlock:
			trimmed := strings.TrimSpace(line)
			if trimmed == "" || strings.HasPrefix(trimmed, "#") {
				continue
			}
			if s, ok := strings.CutSuffix(line, "\\"); ok {
				cur += s + " "
				continue
			}
			words := strings.Fields(cur + line)
			if words[len(words)-1] == "&" { // run in the background
				words = words[:len(words)-1]
			}
			out = append(out, docCommand{where: fmt.Sprintf("%s:%d", filepath.Base(file), n), words: words})
			cur = ""
		case strings.HasPrefix(line, "## ") && section != "":
			inSection = line == "## "+section
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// memberVerbs are the membership commands the procedures are written
// against; they are checked against optoutctl itself once it has them.
var memberVerbs = map[string]int{"add": 2, "promote": 1, "remove": 1, "transfer-leader": -1}

// pendingEnv are variables of flags that are being built as these docs are
// written; TestDocumentedCommands accepts them until optoutd has the flag.
var pendingEnv = map[string]bool{"OPTOUT_JOIN": true}

// TestDocumentedCommands checks every command of deploy/k8s/README.md and
// of docs/operations.md's Kubernetes section against the manifests and the
// real command lines: they cannot be run without a cluster, so at least
// every name in them must exist.
func TestDocumentedCommands(t *testing.T) {
	m := loadManifests(t)
	c := m.container(t)
	root := repoRoot(t)
	cmds := append(shCommands(t, "README.md", ""), shCommands(t, filepath.Join(root, "docs", "operations.md"), "Deploy on Kubernetes")...)
	if len(cmds) < 15 {
		t.Fatalf("found only %d commands in README.md and docs/operations.md; did a heading change?", len(cmds))
	}
	ck := &cmdChecker{t: t, m: m, c: c, root: root}
	if !testing.Short() {
		ck.server = helpSection(t, built(t, "optoutd"), "FLAGS", "server")
		ctl := built(t, "optoutctl")
		ck.ctl = helpSection(t, ctl, "SUBCOMMANDS")
		if ck.ctl["members"] {
			ck.members = helpSection(t, ctl, "SUBCOMMANDS", "members")
		}
	}
	for _, cmd := range cmds {
		switch cmd.words[0] {
		case "kubectl":
			ck.kubectl(cmd)
		case "optoutctl":
			ck.optoutctl(cmd)
		default:
			t.Errorf("%s: only kubectl and optoutctl commands are checked here; add a check for %q", cmd, cmd.words[0])
		}
	}
}

type cmdChecker struct {
	t       *testing.T
	m       *manifests
	c       container
	root    string
	server  map[string]bool // optoutd server's flags (nil with -short)
	ctl     map[string]bool // optoutctl's subcommands
	members map[string]bool // optoutctl members' subcommands, once they exist
}

var ordinalName = regexp.MustCompile(`^(.+)-(\d+)$`)

// pod checks that name is a pod of the StatefulSet and returns its ordinal.
func (k *cmdChecker) pod(cmd docCommand, name string) int {
	mm := ordinalName.FindStringSubmatch(name)
	if mm == nil || mm[1] != k.m.stsName {
		k.t.Errorf("%s: %q is not a pod of StatefulSet %s", cmd, name, k.m.stsName)
		return -1
	}
	n, _ := strconv.Atoi(mm[2])
	return n
}

func (k *cmdChecker) pvc(cmd docCommand, name string) {
	if len(k.m.sts.VolumeClaimTemplates) == 0 {
		k.t.Errorf("%s: PVC %q, but the StatefulSet has no volumeClaimTemplates", cmd, name)
		return
	}
	claim := k.m.sts.VolumeClaimTemplates[0].Metadata.Name
	rest, ok := strings.CutPrefix(name, claim+"-")
	if !ok {
		k.t.Errorf("%s: %q is not a PVC of the volumeClaimTemplate %q", cmd, name, claim)
		return
	}
	k.pod(cmd, rest)
}

// resource checks a TYPE/NAME or TYPE NAME reference.
func (k *cmdChecker) resource(cmd docCommand, typ, name string) {
	switch typ {
	case "statefulset", "sts":
		if name != k.m.stsName {
			k.t.Errorf("%s: no StatefulSet %q", cmd, name)
		}
	case "service", "svc":
		if _, ok := k.m.services[name]; !ok {
			k.t.Errorf("%s: no Service %q", cmd, name)
		}
	case "pdb", "poddisruptionbudget":
		if name != k.m.pdbName {
			k.t.Errorf("%s: no PodDisruptionBudget %q", cmd, name)
		}
	case "pod":
		k.pod(cmd, name)
	case "pvc", "persistentvolumeclaim":
		k.pvc(cmd, name)
	case "namespace":
	default:
		k.t.Errorf("%s: resource type %q is not checked here; add it", cmd, typ)
	}
}

func (k *cmdChecker) kubectl(cmd docCommand) {
	w := cmd.words
	if len(w) < 2 {
		k.t.Errorf("%s: no verb", cmd)
		return
	}
	verb := w[1]
	var pos []string // positional words after the verb
	namespaced := true
	for i := 2; i < len(w); i++ {
		a := w[i]
		switch {
		case a == "--":
			k.execArgs(cmd, w[i+1:])
			i = len(w)
		case a == "-n" || a == "--namespace":
			i++
		case a == "-f":
			i++
			if i < len(w) {
				if _, err := os.Stat(filepath.Join(k.root, w[i])); err != nil {
					k.t.Errorf("%s: -f %s: %v", cmd, w[i], err)
				}
			}
		case a == "-l":
			i++
			if i < len(w) {
				kv := strings.SplitN(w[i], "=", 2)
				if len(kv) != 2 || k.m.sts.Template.Metadata.Labels[kv[0]] != kv[1] {
					k.t.Errorf("%s: -l %s selects no pod of the template", cmd, w[i])
				}
			}
		case a == "--replicas":
			i++
			if n, err := strconv.Atoi(w[min(i, len(w)-1)]); err != nil || n < 3 {
				k.t.Errorf("%s: --replicas must be a number >= 3", cmd)
			}
		case a == "--timeout":
			i++
		case a == "--for=condition=Ready" || strings.HasPrefix(a, "--timeout=") || a == "--wait=false":
		case strings.HasPrefix(a, "-"):
			k.t.Errorf("%s: option %q is not checked here; add it", cmd, a)
		default:
			pos = append(pos, a)
		}
	}
	if verb == "create" && len(pos) == 2 && pos[0] == "namespace" {
		namespaced = false
	}
	if namespaced && !hasNamespace(w) {
		k.t.Errorf("%s: the manifests set no namespace; name one with -n", cmd)
	}
	for i := 0; i < len(pos); i++ {
		p := pos[i]
		switch {
		case verb == "set" && i == 0 && p == "env":
		case verb == "rollout" && i == 0 && p == "status":
		case verb == "set" && strings.Contains(p, "=") || verb == "set" && strings.HasSuffix(p, "-"):
			k.setEnv(cmd, p)
		case strings.Contains(p, "/") && !strings.Contains(p, ":"):
			typ, name, _ := strings.Cut(p, "/")
			k.resource(cmd, typ, name)
		case verb == "port-forward" && strings.Contains(p, ":"):
			if !strings.HasSuffix(p, ":"+strconv.Itoa(k.c.port(k.t, "api"))) {
				k.t.Errorf("%s: %s does not forward to the api port", cmd, p)
			}
		case verb == "exec" && i == 0:
			k.resource(cmd, "pod", p)
		case (verb == "delete" || verb == "get" || verb == "create") && i == 0 && i+1 < len(pos):
			k.resource(cmd, p, pos[i+1])
			i++
		case verb == "get" && p == "pods":
		default:
			k.t.Errorf("%s: word %q is not checked here; add a check", cmd, p)
		}
	}
}

func hasNamespace(w []string) bool {
	for _, a := range w {
		if a == "-n" || a == "--namespace" || a == "--all-namespaces" {
			return true
		}
	}
	return false
}

// execArgs checks the command run in a pod: the image holds only /optoutd.
func (k *cmdChecker) execArgs(cmd docCommand, args []string) {
	if len(args) < 2 || args[0] != "/optoutd" || args[1] != "healthcheck" {
		k.t.Errorf("%s: the image has only /optoutd; this test knows /optoutd healthcheck", cmd)
	}
}

// setEnv checks NAME=value and NAME- of `kubectl set env`.
func (k *cmdChecker) setEnv(cmd docCommand, p string) {
	if name, ok := strings.CutSuffix(p, "-"); ok && !strings.Contains(p, "=") {
		if _, ok := k.c.env(name); !ok {
			k.t.Errorf("%s: removes %s, which the container does not set", cmd, name)
		}
		return
	}
	name, value, _ := strings.Cut(p, "=")
	flag, ok := envFlag(name)
	switch {
	case !ok:
		k.t.Errorf("%s: %s is not an OPTOUT_* flag variable", cmd, name)
	case k.server != nil && !k.server[flag] && !pendingEnv[name]:
		k.t.Errorf("%s: optoutd server has no flag --%s", cmd, flag)
	}
	if name == "OPTOUT_JOIN" {
		api := k.c.port(k.t, "api")
		for _, a := range strings.Split(value, ",") {
			host, port, _ := strings.Cut(a, ":")
			pod, svc, _ := strings.Cut(host, ".")
			if svc != k.m.sts.ServiceName || port != strconv.Itoa(api) {
				k.t.Errorf("%s: join address %q is not POD.%s:%d", cmd, a, k.m.sts.ServiceName, api)
				continue
			}
			if n := k.pod(cmd, pod); n >= *k.m.sts.Replicas {
				k.t.Errorf("%s: join address %q names a pod beyond the initial %d", cmd, a, *k.m.sts.Replicas)
			}
		}
	}
}

func (k *cmdChecker) optoutctl(cmd docCommand) {
	w := cmd.words[1:]
	for len(w) > 0 && strings.HasPrefix(w[0], "-") {
		if w[0] != "--endpoints" || len(w) < 2 {
			k.t.Errorf("%s: optoutctl option %q is not checked here", cmd, w[0])
			return
		}
		w = w[2:]
	}
	if len(w) == 0 {
		k.t.Errorf("%s: no optoutctl command", cmd)
		return
	}
	if k.ctl != nil && !k.ctl[w[0]] && w[0] != "members" {
		k.t.Errorf("%s: optoutctl has no command %q", cmd, w[0])
	}
	switch w[0] {
	case "status":
		if len(w) != 1 {
			k.t.Errorf("%s: status takes no arguments", cmd)
		}
	case "members":
		if len(w) < 2 {
			k.t.Errorf("%s: members needs a verb", cmd)
			return
		}
		verb, args := w[1], w[2:]
		nargs, ok := memberVerbs[verb]
		if !ok {
			k.t.Errorf("%s: members %s is not one of the agreed add|promote|remove|transfer-leader", cmd, verb)
			return
		}
		if k.members != nil && !k.members[verb] {
			k.t.Errorf("%s: optoutctl members has no %q", cmd, verb)
		}
		if nargs >= 0 && len(args) != nargs || nargs < 0 && len(args) > 1 {
			k.t.Errorf("%s: members %s takes %d arguments", cmd, verb, nargs)
			return
		}
		for _, id := range args[:min(len(args), 1)] {
			k.pod(cmd, id)
		}
		if verb == "add" {
			want := fmt.Sprintf("%s.%s:%d", args[0], k.m.sts.ServiceName, k.c.port(k.t, "raft"))
			if args[1] != want {
				k.t.Errorf("%s: the Raft address of %s is %s", cmd, args[0], want)
			}
		}
	default:
		k.t.Errorf("%s: optoutctl %s is not checked here; add a check", cmd, w[0])
	}
}
