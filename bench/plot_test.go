package bench

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// TestPlots draws the figures of docs/performance.md from the JSON files
// the benchmarks write under results/:
//
//	go test -run TestPlots ./bench
//
// regenerates docs/img/*.png. A missing results file skips its figure (CI
// runs the benchmarks at smoke size only, which write *-smoke.json). When
// TestPlots is not named in -run (e.g. `go test ./...`), the figures are
// drawn into a temporary directory instead, so that the code cannot rot and
// an ordinary test run changes no tracked file.
func TestPlots(t *testing.T) {
	out := t.TempDir()
	if f := flag.Lookup("test.run"); f != nil && strings.Contains(f.Value.String(), "TestPlots") {
		out = filepath.Join("..", "docs", "img")
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("latency", func(t *testing.T) {
		var r latencyFile
		if !readResults(t, "latency.json", &r) {
			return
		}
		path := filepath.Join(out, "latency-cdf.png")
		if err := plotLatencyCDF(r, path); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
		path = filepath.Join(out, "latency-tail.png")
		if err := plotLatencyTail(r, path); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	})
	t.Run("storm", func(t *testing.T) {
		var r stormFile
		if !readResults(t, "storm.json", &r) {
			return
		}
		path := filepath.Join(out, "storm-outcomes.png")
		if err := plotStorm(r, path); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	})
	t.Run("throughput", func(t *testing.T) { plotThroughputFigure(t, out) })
	t.Run("idle", func(t *testing.T) {
		var r idleFile
		if !readResults(t, "idle.json", &r) {
			return
		}
		if len(r.Peers) == 0 {
			t.Skip("results/idle.json has no curve (run BenchmarkIdleStreamRSS): no figure")
		}
		path := filepath.Join(out, "idle-rss.png")
		if err := plotIdleRSS(r, path); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	})
}

// readResults decodes results/name into v; it skips the test when the file
// does not exist.
func readResults(t *testing.T, name string, v any) bool {
	data, err := os.ReadFile(filepath.Join("results", name))
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("results/%s missing (run the full benchmark first): no figure", name)
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("results/%s: %v", name, err)
	}
	return true
}

// The parts of the results files the figures use.
type latencyFile struct {
	Date     string          `json:"date"`
	Settings latencySettings `json:"settings"`
	Peers    []latResult     `json:"peers"`
}

type stormFile struct {
	Date     string        `json:"date"`
	Settings stormSettings `json:"settings"`
	Rounds   int           `json:"rounds"`
	Totals   []stormTally  `json:"totals"`
}

// Colours per peer, the same in every figure.
var peerColors = map[string]color.Color{
	"direct":    color.RGBA{0x55, 0x55, 0x55, 0xff},
	"guard":     color.RGBA{0x1f, 0x77, 0xb4, 0xff},
	"guard-raw": color.RGBA{0x17, 0xbe, 0xcf, 0xff},
	"haproxy":   color.RGBA{0xd6, 0x27, 0x28, 0xff},
	// The storm's peers not told the backend's capacity.
	"guard-adaptive":    color.RGBA{0x2c, 0x5f, 0x8a, 0xff},
	"haproxy-nomaxconn": color.RGBA{0xff, 0x7f, 0x0e, 0xff},
}

func newPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.Title.Padding = vg.Points(8)
	p.X.Label.TextStyle.Font.Size = vg.Points(11)
	p.Y.Label.TextStyle.Font.Size = vg.Points(11)
	p.X.Tick.Label.Font.Size = vg.Points(10)
	p.Y.Tick.Label.Font.Size = vg.Points(10)
	p.Legend.TextStyle.Font.Size = vg.Points(10)
	return p
}

// plotLatencyCDF draws, per peer, the fraction of round trips at or under
// each latency (log x axis), from the histogram, with p50 and p99 marked in
// the legend.
func plotLatencyCDF(r latencyFile, path string) error {
	s := r.Settings
	p := newPlot(fmt.Sprintf("Message round trip through Prosody: %d msg/s, %d clients, %.0f s per peer",
		s.Rate, s.Clients, s.DurationSeconds))
	p.X.Label.Text = "round-trip latency (µs, log scale)"
	p.Y.Label.Text = "fraction of messages ≤ latency"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	p.Y.Tick.Marker = plot.ConstantTicks(fractionTicks())
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(10)
	p.Legend.YOffs = vg.Points(-10)

	xmin, xmax := 0.0, 0.0
	for _, peer := range r.Peers {
		h := peer.Histogram
		var total int64
		for _, c := range h.Counts {
			total += c
		}
		if total == 0 || len(h.EdgesUs) != len(h.Counts)+1 {
			continue
		}
		first, last := -1, 0
		for i, c := range h.Counts {
			if c > 0 {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		// The CDF at each bucket's upper edge, starting at 0 at the lower
		// edge of the first non-empty bucket.
		pts := plotter.XYs{{X: h.EdgesUs[first], Y: 0}}
		var cum int64
		for i := first; i <= last; i++ {
			cum += h.Counts[i]
			pts = append(pts, plotter.XY{X: h.EdgesUs[i+1], Y: float64(cum) / float64(total)})
		}
		if xmin == 0 || pts[0].X < xmin {
			xmin = pts[0].X
		}
		xmax = max(xmax, pts[len(pts)-1].X)
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = peerColor(peer.Peer)
		l.Width = vg.Points(2)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s  p50 %s  p99 %s  max %s", peer.Peer,
			fmtUs(peer.P50us), fmtUs(peer.P99us), fmtUs(peer.Maxus)), l)
	}
	if xmax == 0 {
		return errors.New("no latencies in the histogram")
	}
	p.X.Min, p.X.Max = xmin, xmax
	// Dashed guides at p50 and p99.
	for _, q := range []float64{0.5, 0.99} {
		g, err := plotter.NewLine(plotter.XYs{{X: xmin, Y: q}, {X: xmax, Y: q}})
		if err != nil {
			return err
		}
		g.Color = color.Gray{0x99}
		g.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(g)
	}
	return p.Save(9*vg.Inch, 5.5*vg.Inch, path)
}

func fractionTicks() []plot.Tick {
	var ts []plot.Tick
	for i := 0; i <= 10; i++ {
		v := float64(i) / 10
		t := plot.Tick{Value: v}
		if i%2 == 0 || i == 5 || i == 9 {
			t.Label = fmt.Sprintf("%.1f", v)
		}
		ts = append(ts, t)
	}
	return ts
}

// plotLatencyTail draws, per peer, the fraction of round trips slower than
// each latency, both axes logarithmic: the tail (p90, p99, p99.9) that the
// CDF squeezes against 1.
func plotLatencyTail(r latencyFile, path string) error {
	s := r.Settings
	p := newPlot(fmt.Sprintf("Latency tail: %d msg/s, %d clients, %.0f s per peer", s.Rate, s.Clients, s.DurationSeconds))
	p.X.Label.Text = "round-trip latency (µs, log scale)"
	p.Y.Label.Text = "fraction slower"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.ConstantTicks([]plot.Tick{
		{Value: 1, Label: "1"}, {Value: 0.1, Label: "0.1 (p90)"}, {Value: 0.01, Label: "0.01 (p99)"},
		{Value: 0.001, Label: "0.001 (p99.9)"}, {Value: 0.0001, Label: "0.0001"},
	})
	p.Add(plotter.NewGrid())
	p.Legend.Top = false
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(10)
	p.Legend.YOffs = vg.Points(10)

	xmin, xmax, ymin := 0.0, 0.0, 1.0
	for _, peer := range r.Peers {
		h := peer.Histogram
		var total int64
		for _, c := range h.Counts {
			total += c
		}
		if total == 0 || len(h.EdgesUs) != len(h.Counts)+1 {
			continue
		}
		// 1 - CDF at each bucket's upper edge, while it is above zero (a
		// log axis has no zero).
		pts := plotter.XYs{}
		var cum int64
		for i, c := range h.Counts {
			if cum == 0 && c == 0 {
				continue
			}
			if len(pts) == 0 {
				pts = append(pts, plotter.XY{X: h.EdgesUs[i], Y: 1})
			}
			cum += c
			rest := float64(total-cum) / float64(total)
			if rest <= 0 {
				break
			}
			pts = append(pts, plotter.XY{X: h.EdgesUs[i+1], Y: rest})
			ymin = min(ymin, rest)
		}
		if len(pts) < 2 {
			continue
		}
		if xmin == 0 || pts[0].X < xmin {
			xmin = pts[0].X
		}
		xmax = max(xmax, pts[len(pts)-1].X, peer.Maxus)
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = peerColor(peer.Peer)
		l.Width = vg.Points(2)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s  p90 %s  p99 %s  p99.9 %s  max %s", peer.Peer,
			fmtUs(peer.P90us), fmtUs(peer.P99us), fmtUs(peer.P999us), fmtUs(peer.Maxus)), l)
	}
	if xmax == 0 {
		return errors.New("no latencies in the histogram")
	}
	p.X.Min, p.X.Max = xmin, xmax
	p.Y.Min, p.Y.Max = min(ymin, 0.0001), 1
	return p.Save(9*vg.Inch, 5.5*vg.Inch, path)
}

func fmtUs(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.1f ms", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.2f ms", v/1000)
	default:
		return fmt.Sprintf("%.0f µs", v)
	}
}

func peerColor(name string) color.Color {
	if c, ok := peerColors[name]; ok {
		return c
	}
	return color.Black
}

// plotStorm draws one stacked bar per proxy: how its clients' streams
// ended, as a share of all clients; under each bar, how many connections
// the backend reset (those of guard-adaptive's learning never reach a
// client, those of haproxy-nomaxconn do). Results written before the
// peers not told C were measured draw as before, with fewer bars.
func plotStorm(r stormFile, path string) error {
	if len(r.Totals) == 0 {
		return errors.New("no totals")
	}
	s := r.Settings
	p := newPlot(fmt.Sprintf("Overload storm: %d clients at once, backend capacity %d, hold %s (%d rounds)",
		s.Clients, s.Capacity, s.Hold, max(r.Rounds, 1)))
	p.Y.Label.Text = "clients (all rounds)"
	p.X.Label.Text = "how each client's stream ended (under each bar: connections the backend reset)"
	p.Add(plotter.NewGrid())

	type class struct {
		name  string
		color color.Color
		count func(stormTally) int
	}
	classes := []class{
		{"served", color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, func(t stormTally) int { return t.Served }},
		{"clean stream error", color.RGBA{0xff, 0xbb, 0x33, 0xff}, func(t stormTally) int { return t.StreamErrors }},
		{"reset", color.RGBA{0xd6, 0x27, 0x28, 0xff}, func(t stormTally) int { return t.Resets }},
		{"silent close", color.RGBA{0x7f, 0x3c, 0x8d, 0xff}, func(t stormTally) int { return t.SilentCloses }},
		{"timeout", color.RGBA{0x66, 0x66, 0x66, 0xff}, func(t stormTally) int { return t.Timeouts }},
		{"other", color.RGBA{0xbb, 0xbb, 0xbb, 0xff}, func(t stormTally) int { return t.Other }},
	}
	names := make([]string, len(r.Totals))
	maxTotal := 0
	for i, t := range r.Totals {
		names[i] = fmt.Sprintf("%s\nbackend resets %d", t.Proxy, t.BackendResets)
		maxTotal = max(maxTotal, t.Clients)
	}
	var below *plotter.BarChart
	width := vg.Points(70)
	for _, c := range classes {
		vals := make(plotter.Values, len(r.Totals))
		any := false
		for i, t := range r.Totals {
			vals[i] = float64(c.count(t))
			any = any || vals[i] > 0
		}
		// Always show the four classes the figure is about; the rest only
		// when they occurred.
		if !any && (c.name == "timeout" || c.name == "other") {
			continue
		}
		bar, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		bar.Color = c.color
		bar.LineStyle.Width = vg.Points(0.5)
		if below != nil {
			bar.StackOn(below)
		}
		below = bar
		p.Add(bar)
		p.Legend.Add(c.name, bar)
	}
	p.NominalX(names...)
	p.Y.Min, p.Y.Max = 0, float64(maxTotal)*1.02
	p.Legend.Top = true
	p.Legend.Left = false
	// Leave room on the right for the legend, outside the bars.
	p.X.Min, p.X.Max = -0.6, float64(len(names))-0.4+1.0
	p.Legend.XOffs = vg.Points(-4)

	// Counts on each segment large enough to hold them.
	var labels plotter.XYLabels
	for i, t := range r.Totals {
		y := 0.0
		for _, c := range classes {
			n := c.count(t)
			if n > 0 && float64(n) >= 0.06*float64(maxTotal) {
				labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: y + float64(n)/2})
				labels.Labels = append(labels.Labels, fmt.Sprintf("%d", n))
			}
			y += float64(n)
		}
	}
	if len(labels.XYs) > 0 {
		l, err := plotter.NewLabels(labels)
		if err != nil {
			return err
		}
		for i := range l.TextStyle {
			l.TextStyle[i].XAlign = draw.XCenter
			l.TextStyle[i].YAlign = draw.YCenter
			l.TextStyle[i].Font.Size = vg.Points(10)
		}
		p.Add(l)
	}
	// Wide enough for every bar's label: 8 inches hold three peers and
	// the legend, more peers widen the figure.
	w := max(8*vg.Inch, vg.Length(len(names))*1.6*vg.Inch+2*vg.Inch)
	return p.Save(w, 5*vg.Inch, path)
}
