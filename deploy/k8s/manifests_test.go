package k8s_test

import (
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestObjects: exactly the four objects, with the API versions current
// clusters serve, and no namespace (the manifests are applied with -n).
func TestObjects(t *testing.T) {
	m := loadManifests(t)
	want := map[string]string{
		"StatefulSet/optoutd":         "apps/v1",
		"Service/optoutd-peers":       "v1",
		"Service/optoutd":             "v1",
		"PodDisruptionBudget/optoutd": "policy/v1",
	}
	got := map[string]string{}
	for _, o := range m.objects {
		key := o.Kind + "/" + o.Metadata.Name
		if _, dup := got[key]; dup {
			t.Errorf("%s: %s defined twice", o.file, key)
		}
		got[key] = o.APIVersion
		if o.Metadata.Namespace != "" {
			t.Errorf("%s: %s sets namespace %q; the manifests must be namespace-agnostic", o.file, key, o.Metadata.Namespace)
		}
		if o.Metadata.Labels["app.kubernetes.io/name"] != "optoutd" {
			t.Errorf("%s: %s lacks the label app.kubernetes.io/name=optoutd", o.file, key)
		}
	}
	for _, k := range sortedKeys(want) {
		if got[k] != want[k] {
			t.Errorf("%s: apiVersion %q, want %q", k, got[k], want[k])
		}
	}
	for _, k := range sortedKeys(got) {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected object %s: add it to this test with what must hold for it", k)
		}
	}
}

// TestStatefulSet pins what the cluster depends on: three replicas started
// in parallel, the headless service, selectors that select the pods.
func TestStatefulSet(t *testing.T) {
	m := loadManifests(t)
	s := m.sts
	if *s.Replicas != 3 {
		t.Fatalf("replicas: want 3, got %v", *s.Replicas)
	}
	if s.PodManagementPolicy != "Parallel" {
		t.Errorf("podManagementPolicy = %q, want Parallel (OrderedReady never forms a cluster: pod 0 is not ready before a leader exists)", s.PodManagementPolicy)
	}
	peers, ok := m.services[s.ServiceName]
	if !ok {
		t.Fatalf("serviceName %q is not a Service of the manifests", s.ServiceName)
	}
	if peers.ClusterIP != "None" {
		t.Errorf("Service %s (the StatefulSet's serviceName) must be headless: clusterIP %q", s.ServiceName, peers.ClusterIP)
	}
	podLabels := s.Template.Metadata.Labels
	selects := func(what string, sel map[string]string) {
		if len(sel) == 0 {
			t.Errorf("%s has an empty selector", what)
		}
		for k, v := range sel {
			if podLabels[k] != v {
				t.Errorf("%s selects %s=%s, which the pod template does not carry", what, k, v)
			}
		}
	}
	selects("StatefulSet "+m.stsName, s.Selector.MatchLabels)
	for _, name := range sortedKeys(m.services) {
		selects("Service "+name, m.services[name].Selector)
	}
	selects("PodDisruptionBudget "+m.pdbName, m.pdb.Selector.MatchLabels)
}

// TestPeersAndClientServices: the peers' DNS names exist before any pod is
// ready; clients reach the API port of ready pods.
func TestPeersAndClientServices(t *testing.T) {
	m := loadManifests(t)
	c := m.container(t)
	peers := m.services[m.sts.ServiceName]
	if !peers.PublishNotReadyAddresses {
		t.Errorf("Service %s: publishNotReadyAddresses must be true: no node is ready until a leader is elected, and none is elected until they resolve each other", m.sts.ServiceName)
	}
	hasPort := func(svc serviceSpec, name string, want int) bool {
		for _, p := range svc.Ports {
			if p.Port == want && (p.TargetPort == name || p.TargetPort == want) {
				return true
			}
		}
		return false
	}
	if !hasPort(peers, "raft", c.port(t, "raft")) {
		t.Errorf("Service %s does not expose the raft port %d", m.sts.ServiceName, c.port(t, "raft"))
	}
	client, ok := m.services["optoutd"]
	if !ok {
		t.Fatal("no client Service optoutd")
	}
	if client.ClusterIP == "None" || client.PublishNotReadyAddresses {
		t.Error("the client Service must be a normal Service that only routes to ready pods")
	}
	if !hasPort(client, "api", c.port(t, "api")) {
		t.Errorf("Service optoutd does not expose the api port %d", c.port(t, "api"))
	}
}

// TestPodDisruptionBudget: a drain never takes two of three voters.
func TestPodDisruptionBudget(t *testing.T) {
	m := loadManifests(t)
	if m.pdb.MaxUnavailable != 1 {
		t.Errorf("PodDisruptionBudget %s: maxUnavailable = %v (%T), want the integer 1", m.pdbName, m.pdb.MaxUnavailable, m.pdb.MaxUnavailable)
	}
	if m.pdb.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget %s sets minAvailable too; Kubernetes accepts only one", m.pdbName)
	}
}

// TestIdentityAndAddresses: the node ID is the pod name, the advertised
// addresses are the stable DNS names, and the initial cluster names every
// replica exactly as that replica advertises itself (optoutd refuses to
// start otherwise).
func TestIdentityAndAddresses(t *testing.T) {
	m := loadManifests(t)
	c := m.container(t)
	if len(c.Args) == 0 || c.Args[0] != "server" {
		t.Fatalf("args must start with the server command: %q", c.Args)
	}
	if len(c.Command) != 0 {
		t.Errorf("command %q overrides the image's entrypoint /optoutd", c.Command)
	}
	fieldRef := func(name string) string {
		e, ok := c.env(name)
		if !ok || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil {
			return ""
		}
		return e.ValueFrom.FieldRef.FieldPath
	}
	if fieldRef("OPTOUT_ID") != "metadata.name" {
		t.Errorf("OPTOUT_ID must come from metadata.name through the downward API")
	}
	// Every $(VAR) in the args must be defined in the container's env, or
	// Kubernetes passes it through literally.
	for _, a := range c.Args {
		for _, ref := range varRef.FindAllStringSubmatch(a, -1) {
			if _, ok := c.env(ref[1]); !ok {
				t.Errorf("arg %q references $(%s), which the container's env does not define", a, ref[1])
			}
		}
	}
	if fieldRef("POD_NAME") != "metadata.name" {
		t.Errorf("POD_NAME must come from metadata.name")
	}
	apiPort, raftPort := c.port(t, "api"), c.port(t, "raft")
	listen := func(flag string, want int) {
		v, ok := arg(c.Args, flag)
		_, p, err := net.SplitHostPort(v)
		if !ok || err != nil || p != strconv.Itoa(want) {
			t.Errorf("--%s=%q: want a listen address on port %d (the container port)", flag, v, want)
		}
	}
	listen("api-addr", apiPort)
	listen("raft-addr", raftPort)
	if v, _ := arg(c.Args, "data-dir"); v != "/data" {
		t.Errorf("--data-dir=%q, want /data", v)
	}
	domain := "$(POD_NAME)." + m.sts.ServiceName
	for flag, p := range map[string]int{"raft-advertise": raftPort, "api-advertise": apiPort} {
		want := fmt.Sprintf("%s:%d", domain, p)
		if v, _ := arg(c.Args, flag); v != want {
			t.Errorf("--%s=%q, want %q (the pod's stable name)", flag, v, want)
		}
	}
	ic, ok := c.env("OPTOUT_INITIAL_CLUSTER")
	if !ok {
		if _, ok := arg(c.Args, "initial-cluster"); !ok {
			t.Fatal("neither OPTOUT_INITIAL_CLUSTER nor --initial-cluster is set")
		}
		t.Fatal("--initial-cluster is an argument; keep it in OPTOUT_INITIAL_CLUSTER, which the scale-up procedure swaps for OPTOUT_JOIN")
	}
	adv, _ := arg(c.Args, "raft-advertise")
	var want []string
	for i := 0; i < *m.sts.Replicas; i++ {
		pod := fmt.Sprintf("%s-%d", m.stsName, i)
		want = append(want, pod+"="+strings.ReplaceAll(adv, "$(POD_NAME)", pod))
	}
	if ic.Value != strings.Join(want, ",") {
		t.Errorf("OPTOUT_INITIAL_CLUSTER = %q,\nwant        %q (every replica, as it advertises itself)", ic.Value, strings.Join(want, ","))
	}
}

// TestStorage: /data is a volume claim per pod.
func TestStorage(t *testing.T) {
	m := loadManifests(t)
	c := m.container(t)
	vcts := m.sts.VolumeClaimTemplates
	if len(vcts) != 1 {
		t.Fatalf("want one volumeClaimTemplate, got %d", len(vcts))
	}
	v := vcts[0]
	mounted := false
	for _, vm := range c.VolumeMounts {
		if vm.Name == v.Metadata.Name && vm.MountPath == "/data" {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("the volumeClaimTemplate %q is not mounted at /data", v.Metadata.Name)
	}
	if len(v.Spec.AccessModes) != 1 || v.Spec.AccessModes[0] != "ReadWriteOnce" {
		t.Errorf("accessModes = %q, want [ReadWriteOnce]", v.Spec.AccessModes)
	}
	if v.Spec.Resources.Requests["storage"] == "" {
		t.Error("the volumeClaimTemplate requests no storage size")
	}
}

// TestNonRoot: the pod runs as the image's user 65532, never root, and can
// write its volume (fsGroup) and nothing else.
func TestNonRoot(t *testing.T) {
	m := loadManifests(t)
	ps := m.sts.Template.Spec.SecurityContext
	c := m.container(t)
	cs := c.SecurityContext
	is := func(b *bool) bool { return b != nil && *b }
	is65532 := func(n *int64) bool { return n != nil && *n == 65532 }
	if !is(ps.RunAsNonRoot) || !is65532(ps.RunAsUser) || !is65532(ps.RunAsGroup) {
		t.Error("pod securityContext: want runAsNonRoot true, runAsUser and runAsGroup 65532")
	}
	if !is65532(ps.FSGroup) {
		t.Error("pod securityContext: want fsGroup 65532, or the volume is not writable by the node")
	}
	if cs.RunAsUser != nil && *cs.RunAsUser == 0 {
		t.Error("the container runs as root")
	}
	if cs.RunAsNonRoot != nil && !*cs.RunAsNonRoot {
		t.Error("the container sets runAsNonRoot false")
	}
	if cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation {
		t.Error("container securityContext: want allowPrivilegeEscalation false")
	}
	if !is(cs.ReadOnlyRootFilesystem) {
		t.Error("container securityContext: want readOnlyRootFilesystem true (the node writes only /data)")
	}
	if len(cs.Capabilities.Drop) != 1 || cs.Capabilities.Drop[0] != "ALL" {
		t.Errorf("container securityContext: capabilities.drop = %q, want [ALL]", cs.Capabilities.Drop)
	}
}

// TestResources: requests and limits are set (the sizing comment in the
// manifest says how to change them).
func TestResources(t *testing.T) {
	c := loadManifests(t).container(t)
	for _, k := range []string{"cpu", "memory"} {
		if c.Resources.Requests[k] == "" {
			t.Errorf("no %s request", k)
		}
		if c.Resources.Limits[k] == "" {
			t.Errorf("no %s limit", k)
		}
	}
}

// TestProbes: readiness is /readyz on the API port (exec healthcheck or
// httpGet), liveness is /healthz, never /readyz (a node without a quorum
// must not be restarted).
func TestProbes(t *testing.T) {
	c := loadManifests(t).container(t)
	apiPort := c.port(t, "api")
	r := c.ReadinessProbe
	switch {
	case r == nil:
		t.Fatal("no readinessProbe")
	case r.Exec != nil:
		cmd := r.Exec.Command
		if len(cmd) < 2 || cmd[0] != "/optoutd" || cmd[1] != "healthcheck" {
			t.Fatalf("readinessProbe exec %q: want /optoutd healthcheck ...", cmd)
		}
		raw, ok := arg(cmd, "url")
		if !ok {
			raw = "http://127.0.0.1:7001/readyz" // the healthcheck default
		}
		u, err := url.Parse(raw)
		if err != nil || u.Path != "/readyz" || u.Port() != strconv.Itoa(apiPort) {
			t.Errorf("readinessProbe checks %q, want /readyz on the api port %d", raw, apiPort)
		}
		if to, ok := arg(cmd, "timeout"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(to, "s"))
			if err != nil || r.TimeoutSeconds <= n {
				t.Errorf("readinessProbe: timeoutSeconds %d must exceed the healthcheck's --timeout %s", r.TimeoutSeconds, to)
			}
		}
	case r.HTTPGet != nil:
		if r.HTTPGet.Path != "/readyz" || (r.HTTPGet.Port != "api" && r.HTTPGet.Port != apiPort) {
			t.Errorf("readinessProbe httpGet %v: want /readyz on the api port", *r.HTTPGet)
		}
	default:
		t.Fatal("readinessProbe is neither exec nor httpGet")
	}
	l := c.LivenessProbe
	if l == nil || l.HTTPGet == nil || l.HTTPGet.Path != "/healthz" || (l.HTTPGet.Port != "api" && l.HTTPGet.Port != apiPort) {
		t.Errorf("livenessProbe: want httpGet /healthz on the api port, got %+v", l)
	}
	if s := c.StartupProbe; s != nil && (s.HTTPGet == nil || s.HTTPGet.Path != "/healthz") {
		t.Errorf("startupProbe: want httpGet /healthz, got %+v", s)
	}
}

// TestFlagsExist runs the real binary: every flag in the args and every
// OPTOUT_* variable is a flag of `optoutd server`, and the readiness probe
// command is a valid healthcheck invocation (it may find no node here, but
// must not be refused for its flags).
func TestFlagsExist(t *testing.T) {
	m := loadManifests(t)
	c := m.container(t)
	bin := built(t, "optoutd")
	server := helpSection(t, bin, "FLAGS", "server")
	for _, a := range c.Args[1:] {
		name, ok := strings.CutPrefix(a, "--")
		if !ok {
			t.Errorf("arg %q is not a --flag=value", a)
			continue
		}
		name = strings.SplitN(name, "=", 2)[0]
		if !server[name] {
			t.Errorf("arg %q: optoutd server has no flag --%s", a, name)
		}
	}
	for _, e := range c.Env {
		if flag, ok := envFlag(e.Name); ok && !server[flag] {
			t.Errorf("env %s: optoutd server has no flag --%s", e.Name, flag)
		}
	}
	if r := c.ReadinessProbe; r != nil && r.Exec != nil {
		out, err := exec.Command(bin, r.Exec.Command[1:]...).CombinedOutput()
		s := string(out)
		if err != nil && !strings.Contains(s, "unhealthy:") {
			t.Errorf("the readiness probe %q fails for another reason than health: %v\n%s", r.Exec.Command, err, s)
		}
	}
}
