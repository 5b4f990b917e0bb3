// Package kubernetes holds Guard's Kubernetes manifests (*.yaml in this
// directory) and the test that checks them: every document decodes strictly
// into the Kubernetes API types (a misspelt field fails), Guard's
// configuration in each ConfigMap passes config.Parse, and the drain and
// probe wiring that docs/kubernetes.md describes holds.
package kubernetes

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"

	"github.com/guard-xmpp/guard/config"
	"github.com/guard-xmpp/guard/internal/testcert"
)

// doc is one YAML document of a manifest file, decoded.
type doc struct {
	file string
	line int // where the document starts, 1-based
	kind string
	obj  any // *appsv1.Deployment, *corev1.Service, ...
}

func (d doc) String() string { return fmt.Sprintf("%s:%d (%s)", d.file, d.line, d.kind) }

// newObject returns an empty object of the API type for apiVersion and kind.
func newObject(apiVersion, kind string) (any, bool) {
	switch apiVersion + " " + kind {
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}, true
	case "v1 Service":
		return &corev1.Service{}, true
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}, true
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}, true
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, true
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, true
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, true
	case "monitoring.coreos.com/v1 PrometheusRule":
		return &monitoringv1.PrometheusRule{}, true
	case "cert-manager.io/v1 Certificate":
		return &certificate{}, true
	}
	return nil, false
}

var separator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// loadManifests reads and strictly decodes every document of every *.yaml
// file in this directory.
func loadManifests(t *testing.T) []doc {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no *.yaml manifests")
	}
	var docs []doc
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		starts := separator.FindAllIndex(src, -1)
		bounds := []int{0}
		for _, s := range starts {
			bounds = append(bounds, s[0], s[1])
		}
		bounds = append(bounds, len(src))
		for i := 0; i+1 < len(bounds); i += 2 {
			part := src[bounds[i]:bounds[i+1]]
			line := 1 + bytes.Count(src[:bounds[i]], []byte("\n"))
			if len(bytes.TrimSpace(stripComments(part))) == 0 {
				continue // the header comment before the first ---
			}
			var tm struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(part, &tm); err != nil {
				t.Errorf("%s:%d: %v", f, line, err)
				continue
			}
			obj, ok := newObject(tm.APIVersion, tm.Kind)
			if !ok {
				t.Errorf("%s:%d: apiVersion %q kind %q: not a type this test knows; add it to newObject", f, line, tm.APIVersion, tm.Kind)
				continue
			}
			// Strict: unknown fields and duplicate keys are errors.
			if err := yaml.UnmarshalStrict(part, obj); err != nil {
				t.Errorf("%s:%d: %s: %v", f, line, tm.Kind, err)
				continue
			}
			docs = append(docs, doc{file: f, line: line, kind: tm.Kind, obj: obj})
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return docs
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			out = append(out, l...)
			out = append(out, '\n')
		}
	}
	return out
}

// Strict decoding catches a misspelt field: the test's own guard.
func TestStrictDecodingRejectsTypos(t *testing.T) {
	bad := []byte(`
apiVersion: apps/v1
kind: Deployment
metadata:
  name: x
spec:
  template:
    spec:
      terminationGracePeriodSecond: 30
`)
	if err := yaml.UnmarshalStrict(bad, &appsv1.Deployment{}); err == nil || !strings.Contains(err.Error(), "terminationGracePeriodSecond") {
		t.Fatalf("a misspelt field decoded without error: %v", err)
	}
}

func TestManifestsDecode(t *testing.T) {
	docs := loadManifests(t)
	kinds := map[string]int{}
	for _, d := range docs {
		kinds[d.kind]++
		var meta struct{ name, namespace string }
		if o, ok := d.obj.(metav1.Object); ok {
			meta.name, meta.namespace = o.GetName(), o.GetNamespace()
		}
		if meta.name == "" || meta.namespace == "" {
			t.Errorf("%v: metadata.name and metadata.namespace are required", d)
		}
	}
	for _, k := range []string{"ConfigMap", "Service", "Deployment", "StatefulSet", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule", "Certificate"} {
		if kinds[k] == 0 {
			t.Errorf("no %s in the manifests", k)
		}
	}
}

// workload is a Deployment or StatefulSet, reduced to what the checks need.
type workload struct {
	doc      doc
	name     string
	replicas *int32
	template corev1.PodTemplateSpec
}

func workloads(docs []doc) []workload {
	var out []workload
	for _, d := range docs {
		switch o := d.obj.(type) {
		case *appsv1.Deployment:
			out = append(out, workload{d, o.Name, o.Spec.Replicas, o.Spec.Template})
		case *appsv1.StatefulSet:
			out = append(out, workload{d, o.Name, o.Spec.Replicas, o.Spec.Template})
		}
	}
	return out
}

// tlsDir is where the manifests mount the certificate Secret in Guard's
// containers. Parsing reads the certificate files, so guardConfigs points
// the paths at a throwaway pair.
const tlsDir = "/etc/guard-tls/"

// guardConfigs parses config.hcl of every ConfigMap that carries one.
func guardConfigs(t *testing.T, docs []doc) map[string]*config.Config {
	t.Helper()
	certFile, _ := testcert.Write(t, t.TempDir(), "example.net", "xmpp.example.net")
	out := map[string]*config.Config{}
	for _, d := range docs {
		cm, ok := d.obj.(*corev1.ConfigMap)
		if !ok {
			continue
		}
		src, ok := cm.Data["config.hcl"]
		if !ok {
			continue
		}
		src = strings.ReplaceAll(src, tlsDir, filepath.Dir(certFile)+"/")
		cfg, err := config.Parse(d.file+":configmap/"+cm.Name+"/config.hcl", []byte(src))
		if err != nil {
			t.Errorf("%v: config.hcl does not parse:\n%v", d, err)
			continue
		}
		if w := cfg.Warnings(); w != nil {
			t.Errorf("%v: config.hcl has warnings:\n%v", d, w)
		}
		out[cm.Name] = cfg
	}
	return out
}

func TestGuardConfigMapsParse(t *testing.T) {
	if cfgs := guardConfigs(t, loadManifests(t)); len(cfgs) == 0 && !t.Failed() {
		t.Fatal("no ConfigMap carries a config.hcl")
	}
}

// isGuard tells Guard's container by its image.
func isGuard(c corev1.Container) bool {
	img := c.Image
	if i := strings.LastIndex(img, "/"); i >= 0 {
		img = img[i+1:]
	}
	return img == "guard" || strings.HasPrefix(img, "guard:") || strings.HasPrefix(img, "guard@")
}

func port(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return int32(n)
}

// checkProbe: the probe asks path on Guard's admin port, either by the
// kubelet's httpGet or by `guard health` (distroless images have no curl).
func checkProbe(t *testing.T, where string, p *corev1.Probe, path string, c corev1.Container, adminPort int32) {
	t.Helper()
	if p == nil {
		t.Errorf("%s: missing (want %s on the admin port %d)", where, path, adminPort)
		return
	}
	switch {
	case p.HTTPGet != nil:
		if p.HTTPGet.Path != path {
			t.Errorf("%s: path %q, want %q", where, p.HTTPGet.Path, path)
		}
		if got := resolvePort(c, p.HTTPGet.Port.String()); got != adminPort {
			t.Errorf("%s: port %s (%d), want the admin port %d", where, p.HTTPGet.Port.String(), got, adminPort)
		}
	case p.Exec != nil:
		cmd := strings.Join(p.Exec.Command, " ")
		if !strings.HasPrefix(cmd, "/guard health") {
			t.Errorf("%s: exec %q, want /guard health", where, cmd)
		}
		wantPath := "-path " + path
		if path == "/healthz" && !strings.Contains(cmd, "-path") {
			wantPath = "" // the default
		}
		if !strings.Contains(cmd, wantPath) || !strings.Contains(cmd, ":"+strconv.Itoa(int(adminPort))) {
			t.Errorf("%s: exec %q, want -addr ...:%d %s", where, cmd, adminPort, wantPath)
		}
	default:
		t.Errorf("%s: neither httpGet nor exec", where)
	}
}

// resolvePort returns the number of a port given by number or by name.
func resolvePort(c corev1.Container, p string) int32 {
	if n, err := strconv.Atoi(p); err == nil {
		return int32(n)
	}
	for _, cp := range c.Ports {
		if cp.Name == p {
			return cp.ContainerPort
		}
	}
	return -1
}

func containerPort(c corev1.Container, n int32) bool {
	for _, cp := range c.Ports {
		if cp.ContainerPort == n && (cp.Protocol == "" || cp.Protocol == corev1.ProtocolTCP) {
			return true
		}
	}
	return false
}

// preStopWait returns how long a main container's preStop exec hook waits
// after asking Guard to drain: the bound of its wait loop ("+ 40 ))") or
// its sleep ("sleep 40").
func preStopWait(cmd string) (time.Duration, bool) {
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`\+\s*(\d+)\s*\)\)`),
		regexp.MustCompile(`\bsleep\s+(\d+)\b`),
	} {
		if m := re.FindStringSubmatch(cmd); m != nil {
			n, _ := strconv.Atoi(m[1])
			return time.Duration(n) * time.Second, true
		}
	}
	return 0, false
}

// The wiring docs/kubernetes.md describes: Guard's container, probes, ports,
// drain and grace period, for every workload that runs Guard.
func TestGuardWorkloads(t *testing.T) {
	docs := loadManifests(t)
	cfgs := guardConfigs(t, docs)
	sidecars, edges := 0, 0
	for _, w := range workloads(docs) {
		spec := w.template.Spec
		var guard *corev1.Container
		sidecar := false
		for i, c := range spec.InitContainers {
			if isGuard(c) {
				guard, sidecar = &spec.InitContainers[i], true
			}
		}
		for i, c := range spec.Containers {
			if isGuard(c) {
				guard = &spec.Containers[i]
			}
		}
		if guard == nil {
			t.Errorf("%v: %s runs no Guard container", w.doc, w.name)
			continue
		}
		where := fmt.Sprintf("%v: %s/%s", w.doc, w.name, guard.Name)

		// The configuration: a ConfigMap volume mounted at /etc/guard, read
		// with -config /etc/guard/config.hcl.
		if got := strings.Join(guard.Args, " "); got != "-config /etc/guard/config.hcl" {
			t.Errorf("%s: args %q, want -config /etc/guard/config.hcl", where, got)
		}
		var cfg *config.Config
		for _, m := range guard.VolumeMounts {
			if m.MountPath != "/etc/guard" {
				continue
			}
			if m.SubPath != "" {
				t.Errorf("%s: the config is mounted with subPath: ConfigMap edits would never reach the pod", where)
			}
			for _, v := range spec.Volumes {
				if v.Name == m.Name && v.ConfigMap != nil {
					cfg = cfgs[v.ConfigMap.Name]
					if cfg == nil {
						t.Errorf("%s: ConfigMap %q has no config.hcl that parses", where, v.ConfigMap.Name)
					}
				}
			}
		}
		if cfg == nil {
			t.Errorf("%s: no ConfigMap mounted at /etc/guard", where)
			continue
		}

		// Ports: every listener and the admin endpoint are declared; the
		// admin endpoint listens beyond loopback (the kubelet probes the pod IP).
		adminHost, _, _ := net.SplitHostPort(cfg.Admin.Address)
		if adminHost == "127.0.0.1" || adminHost == "::1" || adminHost == "localhost" {
			t.Errorf("%s: admin.address %q is loopback: httpGet probes and Prometheus cannot reach it", where, cfg.Admin.Address)
		}
		adminPort := port(t, cfg.Admin.Address)
		if !containerPort(*guard, adminPort) {
			t.Errorf("%s: admin port %d is not a containerPort", where, adminPort)
		}
		for _, l := range cfg.Listeners {
			if !containerPort(*guard, port(t, l.Address)) {
				t.Errorf("%s: listener %q port %d is not a containerPort", where, l.Name, port(t, l.Address))
			}
		}

		// Probes: liveness and startup on /healthz (never the backend),
		// readiness on /readyz.
		checkProbe(t, where+" startupProbe", guard.StartupProbe, "/healthz", *guard, adminPort)
		checkProbe(t, where+" livenessProbe", guard.LivenessProbe, "/healthz", *guard, adminPort)
		checkProbe(t, where+" readinessProbe", guard.ReadinessProbe, "/readyz", *guard, adminPort)

		// Hardening.
		sc := guard.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s: no securityContext", where)
		default:
			if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				t.Errorf("%s: runAsNonRoot is not true", where)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem is not true", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
				t.Errorf("%s: capabilities do not drop ALL", where)
			}
		}
		if guard.Resources.Requests.Cpu().IsZero() || guard.Resources.Requests.Memory().IsZero() || guard.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: want cpu and memory requests and a memory limit", where)
		}

		// The grace period outlasts Guard's own deadline.
		grace := time.Duration(30) * time.Second // Kubernetes' default
		if spec.TerminationGracePeriodSeconds != nil {
			grace = time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
		}
		if grace <= cfg.Shutdown.Deadline {
			t.Errorf("%s: terminationGracePeriodSeconds %v is not above shutdown.deadline %v", where, grace, cfg.Shutdown.Deadline)
		}
		if cfg.Shutdown.AcceptDelay <= 0 {
			t.Errorf("%s: shutdown.accept_delay is 0: Guard would stop accepting before the endpoint has left the Service", where)
		}

		if !sidecar {
			edges++
			continue
		}
		sidecars++
		// A native sidecar: restartPolicy Always on the init container; the
		// drain starts from the main containers' preStop, which waits at
		// least Guard's deadline, and the grace period covers that wait.
		if guard.RestartPolicy == nil || *guard.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Errorf("%s: a sidecar init container needs restartPolicy: Always", where)
		}
		for _, c := range spec.Containers {
			cw := fmt.Sprintf("%v: %s/%s", w.doc, w.name, c.Name)
			h := (*corev1.LifecycleHandler)(nil)
			if c.Lifecycle != nil {
				h = c.Lifecycle.PreStop
			}
			switch {
			case h == nil:
				t.Errorf("%s: no preStop hook: Guard (a sidecar) would get SIGTERM only after this container exited", cw)
			case h.HTTPGet != nil:
				t.Errorf("%s: preStop httpGet %s sends a GET, which /-/drain refuses (POST only), and returns before the drain ends: "+
					"use an exec hook that POSTs and waits", cw, h.HTTPGet.Path)
			case h.Exec != nil:
				cmd := strings.Join(h.Exec.Command, " ")
				if !strings.Contains(cmd, fmt.Sprintf("127.0.0.1:%d", adminPort)) || !strings.Contains(cmd, "/-/drain") {
					t.Errorf("%s: preStop exec does not call http://127.0.0.1:%d/-/drain: %q", cw, adminPort, cmd)
				}
				wait, ok := preStopWait(cmd)
				if !ok {
					t.Errorf("%s: preStop exec does not wait after the drain request: %q", cw, cmd)
					break
				}
				if wait < cfg.Shutdown.Deadline {
					t.Errorf("%s: preStop waits %v, less than Guard's shutdown.deadline %v: the backend would stop under draining streams", cw, wait, cfg.Shutdown.Deadline)
				}
				if grace <= wait {
					t.Errorf("%s: terminationGracePeriodSeconds %v leaves no time after the preStop wait %v", cw, grace, wait)
				}
			default:
				t.Errorf("%s: preStop is not an exec hook", cw)
			}
		}
	}
	if sidecars == 0 || edges == 0 {
		t.Errorf("want at least one sidecar and one edge workload, have %d and %d", sidecars, edges)
	}
}

func selects(selector map[string]string, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Services and budgets select real pods; a Service publishing Guard's pods
// sends clients to Guard's listener, never past it; the load balancers keep
// the client's address.
func TestServicesAndBudgets(t *testing.T) {
	docs := loadManifests(t)
	cfgs := guardConfigs(t, docs)
	ws := workloads(docs)
	for _, d := range docs {
		switch o := d.obj.(type) {
		case *corev1.Service:
			var target *workload
			for i := range ws {
				if selects(o.Spec.Selector, ws[i].template.Labels) {
					target = &ws[i]
				}
			}
			if target == nil {
				t.Errorf("%v: Service %s selects no workload's pods", d, o.Name)
				continue
			}
			if o.Spec.Type == corev1.ServiceTypeLoadBalancer && o.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
				t.Errorf("%v: LoadBalancer %s without externalTrafficPolicy: Local: Guard would see node addresses", d, o.Name)
			}
			// Which ports do the selected pods serve?
			allowed := map[int32]bool{}
			for _, c := range append(append([]corev1.Container{}, target.template.Spec.InitContainers...), target.template.Spec.Containers...) {
				if !isGuard(c) {
					continue
				}
				for _, v := range target.template.Spec.Volumes {
					if v.ConfigMap != nil && cfgs[v.ConfigMap.Name] != nil {
						cfg := cfgs[v.ConfigMap.Name]
						for _, l := range cfg.Listeners {
							allowed[port(t, l.Address)] = true
						}
						allowed[port(t, cfg.Admin.Address)] = true
					}
				}
			}
			for _, p := range o.Spec.Ports {
				tp := p.TargetPort.IntVal
				if p.TargetPort.String() == "" || p.TargetPort.String() == "0" {
					tp = p.Port
				}
				if tp == 0 {
					t.Errorf("%v: Service %s port %s: give targetPort as a number (named ports of sidecars are not resolved everywhere)", d, o.Name, p.Name)
					continue
				}
				if !allowed[tp] {
					t.Errorf("%v: Service %s port %s targets %d, which is not a Guard listener or admin port: clients would bypass Guard", d, o.Name, p.Name, tp)
				}
			}
		case *policyv1.PodDisruptionBudget:
			found := false
			for _, w := range ws {
				if o.Spec.Selector != nil && selects(o.Spec.Selector.MatchLabels, w.template.Labels) {
					found = true
				}
			}
			if !found {
				t.Errorf("%v: PodDisruptionBudget %s selects no workload's pods", d, o.Name)
			}
			if o.Spec.MaxUnavailable == nil || o.Spec.MaxUnavailable.String() != "1" {
				t.Errorf("%v: PodDisruptionBudget %s: want maxUnavailable: 1", d, o.Name)
			}
		}
	}
	for _, w := range ws {
		if w.template.Labels == nil || !selects(selectorOf(w), w.template.Labels) {
			t.Errorf("%v: %s: the selector does not match the pod template's labels", w.doc, w.name)
		}
	}
}

func selectorOf(w workload) map[string]string {
	switch o := w.doc.obj.(type) {
	case *appsv1.Deployment:
		if o.Spec.Selector != nil {
			return o.Spec.Selector.MatchLabels
		}
	case *appsv1.StatefulSet:
		if o.Spec.Selector != nil {
			return o.Spec.Selector.MatchLabels
		}
	}
	return nil
}

// The edge Deployment: three replicas spread over nodes.
func TestEdgeDeployment(t *testing.T) {
	for _, d := range loadManifests(t) {
		dep, ok := d.obj.(*appsv1.Deployment)
		if !ok || d.file != "edge.yaml" {
			continue
		}
		if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 {
			t.Errorf("%v: want 3 replicas", d)
		}
		a := dep.Spec.Template.Spec.Affinity
		if a == nil || a.PodAntiAffinity == nil ||
			len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution)+len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 0 {
			t.Errorf("%v: no pod anti-affinity", d)
		}
		return
	}
	t.Fatal("edge.yaml has no Deployment")
}
