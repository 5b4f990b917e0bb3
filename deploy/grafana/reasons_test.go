package grafana

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// docs/metrics.md lists every value of the reason labels that the code
// produces: the Reason constants of proxy/metrics.go, every policy event
// (a stream ended with a stream error has its event as reason, with "-"
// written "_"), and the admission refusals.
func TestMetricsDocListsEveryReason(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	metricsGo := read("../../proxy/metrics.go")
	admission := read("../../proxy/admission.go")
	policyGo := read("../../policy/policy.go")
	doc := read("../../docs/metrics.md")

	var reasons []string
	for _, m := range regexp.MustCompile(`(?m)^\s*Reason[A-Za-z]+\s*=\s*"([a-z_]+)"`).FindAllStringSubmatch(metricsGo, -1) {
		reasons = append(reasons, m[1])
	}
	events := 0
	for _, m := range regexp.MustCompile(`(?m)^\s*[A-Z][A-Za-z]*\s+Event\s*=\s*"([a-z-]+)"`).FindAllStringSubmatch(policyGo, -1) {
		reasons = append(reasons, strings.ReplaceAll(m[1], "-", "_"))
		events++
	}
	for _, m := range regexp.MustCompile(`metrics\.rejected\([^,]+,\s*"([a-z_]+)"\)`).FindAllStringSubmatch(admission, -1) {
		reasons = append(reasons, m[1])
	}
	if len(reasons) < 10 || events < 10 {
		t.Fatalf("found %d reasons (%d events) in the code: the patterns no longer match it", len(reasons), events)
	}
	for _, r := range reasons {
		if !strings.Contains(doc, "`"+r+"`") {
			t.Errorf("docs/metrics.md does not list the reason %s", r)
		}
	}
}
