// Package k8s_test checks the Kubernetes manifests of deploy/k8s and the
// commands that document them. No cluster is available to apply them, so
// these tests are the only thing standing between a broken edit and a
// broken deployment: they parse every manifest, pin the properties the
// cluster depends on, and check the documented commands against the
// manifests and against the real optoutd and optoutctl command lines.
package k8s_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// The subset of the Kubernetes objects the tests look at. Fields are
// decoded by name, so a misspelt key in a manifest leaves its field empty
// and the assertion about it fails.
type (
	meta struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	}
	object struct {
		APIVersion string    `yaml:"apiVersion"`
		Kind       string    `yaml:"kind"`
		Metadata   meta      `yaml:"metadata"`
		Spec       yaml.Node `yaml:"spec"`
		file       string
	}
	labelSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	statefulSetSpec struct {
		ServiceName         string        `yaml:"serviceName"`
		Replicas            *int          `yaml:"replicas"`
		PodManagementPolicy string        `yaml:"podManagementPolicy"`
		Selector            labelSelector `yaml:"selector"`
		Template            struct {
			Metadata meta    `yaml:"metadata"`
			Spec     podSpec `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata meta `yaml:"metadata"`
			Spec     struct {
				AccessModes []string `yaml:"accessModes"`
				Resources   struct {
					Requests map[string]string `yaml:"requests"`
				} `yaml:"resources"`
			} `yaml:"spec"`
		} `yaml:"volumeClaimTemplates"`
	}
	podSpec struct {
		SecurityContext struct {
			RunAsNonRoot *bool  `yaml:"runAsNonRoot"`
			RunAsUser    *int64 `yaml:"runAsUser"`
			RunAsGroup   *int64 `yaml:"runAsGroup"`
			FSGroup      *int64 `yaml:"fsGroup"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
	}
	container struct {
		Name           string   `yaml:"name"`
		Image          string   `yaml:"image"`
		Command        []string `yaml:"command"`
		Args           []string `yaml:"args"`
		Env            []envVar `yaml:"env"`
		Ports          []port   `yaml:"ports"`
		ReadinessProbe *probe   `yaml:"readinessProbe"`
		LivenessProbe  *probe   `yaml:"livenessProbe"`
		StartupProbe   *probe   `yaml:"startupProbe"`
		VolumeMounts   []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			RunAsNonRoot             *bool  `yaml:"runAsNonRoot"`
			RunAsUser                *int64 `yaml:"runAsUser"`
			AllowPrivilegeEscalation *bool  `yaml:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   *bool  `yaml:"readOnlyRootFilesystem"`
			Capabilities             struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
	}
	envVar struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	}
	port struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	}
	probe struct {
		Exec *struct {
			Command []string `yaml:"command"`
		} `yaml:"exec"`
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"`
		} `yaml:"httpGet"`
		PeriodSeconds    int `yaml:"periodSeconds"`
		TimeoutSeconds   int `yaml:"timeoutSeconds"`
		FailureThreshold int `yaml:"failureThreshold"`
	}
	serviceSpec struct {
		Type                     string            `yaml:"type"`
		ClusterIP                string            `yaml:"clusterIP"`
		PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
		Selector                 map[string]string `yaml:"selector"`
		Ports                    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	pdbSpec struct {
		MaxUnavailable any           `yaml:"maxUnavailable"`
		MinAvailable   any           `yaml:"minAvailable"`
		Selector       labelSelector `yaml:"selector"`
	}
)

// manifests holds every object of deploy/k8s/*.yaml, decoded.
type manifests struct {
	objects []object
	sts     statefulSetSpec
	stsName string
	// services by name, and the one PDB.
	services map[string]serviceSpec
	pdb      pdbSpec
	pdbName  string
}

// loadManifests parses every *.yaml file here (several documents per file
// allowed) and decodes the objects the deployment consists of.
func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no *.yaml manifests in deploy/k8s")
	}
	m := &manifests{services: map[string]serviceSpec{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o object
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			o.file = f
			m.objects = append(m.objects, o)
		}
	}
	for _, o := range m.objects {
		var err error
		switch o.Kind {
		case "StatefulSet":
			m.stsName = o.Metadata.Name
			err = o.Spec.Decode(&m.sts)
		case "Service":
			var s serviceSpec
			err = o.Spec.Decode(&s)
			m.services[o.Metadata.Name] = s
		case "PodDisruptionBudget":
			m.pdbName = o.Metadata.Name
			err = o.Spec.Decode(&m.pdb)
		}
		if err != nil {
			t.Fatalf("%s: %s %s: %v", o.file, o.Kind, o.Metadata.Name, err)
		}
	}
	if m.stsName == "" {
		t.Fatal("no StatefulSet in deploy/k8s")
	}
	if m.sts.Replicas == nil {
		t.Fatalf("StatefulSet %s: set replicas explicitly", m.stsName)
	}
	return m
}

// container returns the optoutd container of the StatefulSet.
func (m *manifests) container(t *testing.T) container {
	t.Helper()
	cs := m.sts.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("StatefulSet %s: want exactly one container, got %d", m.stsName, len(cs))
	}
	return cs[0]
}

func (c container) env(name string) (envVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return envVar{}, false
}

// arg returns the value of --name=value in args ("" and false if absent).
func arg(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func (c container) port(t *testing.T, name string) int {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, name)
	return 0
}

// repoRoot is two levels up from deploy/k8s.
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}

// The real command lines: optoutd and optoutctl are built once and asked
// for their flags and subcommands, so that a renamed flag fails here.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// TestMain removes the binaries built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func built(t *testing.T, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds optoutd and optoutctl; skipped with -short")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "optoutd-k8s-test-")
		if buildErr != nil {
			return
		}
		for _, cmd := range []string{"optoutd", "optoutctl"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, cmd), "github.com/optoutd/optoutd/cmd/"+cmd).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %w\n%s", cmd, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// helpSection runs `bin args... -h` and returns the first word of each
// indented line of its FLAGS or SUBCOMMANDS section (flags without the
// leading dash).
func helpSection(t *testing.T, bin, section string, args ...string) map[string]bool {
	t.Helper()
	out, _ := exec.Command(bin, append(args, "-h")...).CombinedOutput() // -h exits non-zero
	got := map[string]bool{}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == section:
			in = true
		case in && strings.HasPrefix(line, "  "):
			f := strings.Fields(line)
			got[strings.SplitN(strings.TrimPrefix(f[0], "-"), "=", 2)[0]] = true
		case in && strings.TrimSpace(line) == "":
		default:
			in = false
		}
	}
	if len(got) == 0 {
		t.Fatalf("%s %v -h printed no %s:\n%s", bin, args, section, out)
	}
	return got
}

// envFlag maps OPTOUT_INITIAL_CLUSTER to initial-cluster.
func envFlag(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "OPTOUT_")
	if !ok {
		return "", false
	}
	return strings.ToLower(strings.ReplaceAll(rest, "_", "-")), true
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
