package kubernetes

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
)

// The ServiceMonitor scrapes Guard's admin port in every workload that runs
// Guard: it selects a Service per workload whose port of that name targets
// the admin port, and the Service selects the workload's pods.
func TestServiceMonitorReachesEveryGuard(t *testing.T) {
	docs := loadManifests(t)
	cfgs := guardConfigs(t, docs)
	var monitors []*monitoringv1.ServiceMonitor
	var services []*corev1.Service
	for _, d := range docs {
		switch o := d.obj.(type) {
		case *monitoringv1.ServiceMonitor:
			monitors = append(monitors, o)
		case *corev1.Service:
			services = append(services, o)
		}
	}
	if len(monitors) == 0 {
		t.Fatal("no ServiceMonitor")
	}
	for _, w := range workloads(docs) {
		adminPort := int32(0)
		for _, v := range w.template.Spec.Volumes {
			if v.ConfigMap != nil && cfgs[v.ConfigMap.Name] != nil {
				adminPort = port(t, cfgs[v.ConfigMap.Name].Admin.Address)
			}
		}
		scraped := false
		for _, m := range monitors {
			for _, svc := range services {
				if svc.Namespace != w.doc.obj.(interface{ GetNamespace() string }).GetNamespace() ||
					!selects(m.Spec.Selector.MatchLabels, svc.Labels) ||
					!selects(svc.Spec.Selector, w.template.Labels) {
					continue
				}
				for _, ep := range m.Spec.Endpoints {
					if ep.Path != "" && ep.Path != "/metrics" {
						t.Errorf("ServiceMonitor %s: path %q, want /metrics", m.Name, ep.Path)
					}
					for _, sp := range svc.Spec.Ports {
						if sp.Name == ep.Port && sp.TargetPort.IntVal == adminPort {
							scraped = true
						}
					}
				}
			}
		}
		if !scraped {
			t.Errorf("%v: %s: no ServiceMonitor selects a Service whose named port targets Guard's admin port %d", w.doc, w.name, adminPort)
		}
	}
}

// documentedAlerts returns the alert names of docs/metrics.md's "Alerts"
// table, and every metric name the page lists.
func documentedAlerts(t *testing.T) (alerts, metrics map[string]bool) {
	t.Helper()
	src, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	page := string(src)
	i := strings.Index(page, "\n## Alerts")
	if i < 0 {
		t.Fatal(`docs/metrics.md has no "## Alerts" section`)
	}
	section := page[i+1:]
	if j := strings.Index(section[1:], "\n## "); j >= 0 {
		section = section[:j+1]
	}
	alerts, metrics = map[string]bool{}, map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(Guard[A-Za-z]+)` \\|").FindAllStringSubmatch(section, -1) {
		alerts[m[1]] = true
	}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_:][a-z0-9_:]*)` \\|").FindAllStringSubmatch(page, -1) {
		metrics[m[1]] = true
	}
	return alerts, metrics
}

// The PrometheusRule holds exactly the alerts docs/metrics.md describes,
// each with a severity and a summary, on metrics that Guard defines.
func TestPrometheusRuleMatchesDocs(t *testing.T) {
	docAlerts, docMetrics := documentedAlerts(t)
	metricName := regexp.MustCompile(`\b(?:guard|process)_[a-z0-9_]+\b`)
	standard := map[string]bool{"process_open_fds": true, "process_max_fds": true}
	got := map[string]bool{}
	for _, d := range loadManifests(t) {
		pr, ok := d.obj.(*monitoringv1.PrometheusRule)
		if !ok {
			continue
		}
		for _, g := range pr.Spec.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				where := d.String() + ": " + r.Alert
				if got[r.Alert] {
					t.Errorf("%s: defined twice", where)
				}
				got[r.Alert] = true
				expr := r.Expr.String()
				if strings.TrimSpace(expr) == "" {
					t.Errorf("%s: empty expr", where)
				}
				for _, name := range metricName.FindAllString(expr, -1) {
					if !docMetrics[name] && !standard[name] {
						t.Errorf("%s: metric %s is not in docs/metrics.md", where, name)
					}
				}
				if s := r.Labels["severity"]; s != "warning" && s != "critical" {
					t.Errorf("%s: severity %q, want warning or critical", where, s)
				}
				if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("%s: want a summary and a description", where)
				}
			}
		}
	}
	var missing, undocumented []string
	for a := range docAlerts {
		if !got[a] {
			missing = append(missing, a)
		}
	}
	for a := range got {
		if !docAlerts[a] {
			undocumented = append(undocumented, a)
		}
	}
	sort.Strings(missing)
	sort.Strings(undocumented)
	if len(missing) > 0 {
		t.Errorf("docs/metrics.md describes alerts the PrometheusRule lacks: %v", missing)
	}
	if len(undocumented) > 0 {
		t.Errorf("the PrometheusRule has alerts docs/metrics.md does not describe: %v", undocumented)
	}
	if len(got) == 0 {
		t.Error("no alerting rule in the manifests")
	}
}
