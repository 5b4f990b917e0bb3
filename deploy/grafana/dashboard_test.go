// Package grafana holds Guard's Grafana dashboard (guard-dashboard.json)
// and the test that keeps it in step with docs/metrics.md and the code.
package grafana

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

type panel struct {
	ID      int     `json:"id"`
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // a collapsed row's panels
	GridPos *struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	src, err := os.ReadFile("guard-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(src)))
	var d dashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("guard-dashboard.json is not valid JSON: %v", err)
	}
	if !json.Valid(src) {
		t.Fatal("guard-dashboard.json is not valid JSON")
	}
	return d
}

// queries returns every PromQL expression of the dashboard, with where it is.
func queries(d dashboard) map[string]string {
	out := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out[p.Title+"/"+tg.RefID] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			out["variable $"+v.Name] = v.Definition
		}
	}
	return out
}

var metricName = regexp.MustCompile(`\b(?:guard|go|process)_[a-z0-9_]+\b`)

// documented returns the metric names docs/metrics.md lists in its tables
// (a name in backticks at the start of a table row).
func documented(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_:][a-z0-9_:]*)` \\|").FindAllStringSubmatch(string(src), -1) {
		out[m[1]] = true
	}
	if len(out) == 0 {
		t.Fatal("docs/metrics.md lists no metric")
	}
	return out
}

// The standard collectors' metrics that the dashboard may use without a row
// of their own in docs/metrics.md (which names them in prose).
var standard = map[string]bool{
	"go_goroutines":                 true,
	"process_open_fds":              true,
	"process_max_fds":               true,
	"process_resident_memory_bytes": true,
}

func TestDashboardMetricsAreDocumented(t *testing.T) {
	d := loadDashboard(t)
	docs := documented(t)
	qs := queries(d)
	if len(qs) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	used := map[string]bool{}
	for where, q := range qs {
		if strings.TrimSpace(q) == "" {
			t.Errorf("%s: empty query", where)
		}
		for _, name := range metricName.FindAllString(q, -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && docs[b] {
					base = b
				}
			}
			used[base] = true
			if !docs[base] && !standard[base] {
				t.Errorf("%s: metric %s is not in docs/metrics.md", where, name)
			}
		}
	}
	// Every Guard metric has a panel.
	for name := range docs {
		if strings.HasPrefix(name, "guard_") && !used[name] {
			t.Errorf("docs/metrics.md lists %s, but no panel of the dashboard uses it", name)
		}
	}
}

func TestDashboardShape(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard needs a uid and a title")
	}
	ids := map[int]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if prev, ok := ids[p.ID]; ok || p.ID == 0 {
				t.Errorf("panel %q: id %d is missing or also used by %q", p.Title, p.ID, prev)
			}
			ids[p.ID] = p.Title
			if p.GridPos == nil || p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("panel %q: bad gridPos", p.Title)
			}
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
}

// docs/metrics.md lists exactly the metrics the code defines: a metric added
// to proxy/ or cmd/guard/ needs its row there (and a panel here).
func TestMetricsDocMatchesCode(t *testing.T) {
	code := map[string]bool{}
	var files []string
	for _, dir := range []string{"../../proxy", "../../cmd/guard"} {
		fs, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if !strings.HasSuffix(f, "_test.go") {
				files = append(files, f)
			}
		}
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`(?:Name:\s*|NewDesc\()"(guard_[a-z0-9_]+)"`).FindAllStringSubmatch(string(src), -1) {
			code[m[1]] = true
		}
	}
	if len(code) == 0 {
		t.Fatal("found no metric names in proxy/ or cmd/guard/")
	}
	docs := documented(t)
	var missing, stale []string
	for n := range code {
		if !docs[n] {
			missing = append(missing, n)
		}
	}
	for n := range docs {
		if strings.HasPrefix(n, "guard_") && !code[n] {
			stale = append(stale, n)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("defined in proxy/ or cmd/guard/ but not documented in docs/metrics.md: %v", missing)
	}
	if len(stale) > 0 {
		t.Errorf("documented in docs/metrics.md but defined nowhere in proxy/ or cmd/guard/: %v", stale)
	}
}
