package bench

import (
	"errors"
	"fmt"
	"image/color"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// plotThroughputFigure draws throughput.png into out from
// results/throughput.json, for TestPlots; it skips when the file is absent.
func plotThroughputFigure(t *testing.T, out string) {
	var r throughputFile
	if !readResults(t, "throughput.json", &r) {
		return
	}
	path := filepath.Join(out, "throughput.png")
	if err := plotThroughput(r, path); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

// throughputPeers are the peers in the order the figure groups them.
var throughputPeers = []string{"direct", "guard", "guard-raw", "haproxy"}

// plotThroughput draws grouped bars: one group per stanza size, one bar per
// peer, its height the MB/s the backend received, labelled with that figure
// and the proxy's CPU seconds per GB.
func plotThroughput(r throughputFile, path string) error {
	if len(r.Results) == 0 {
		return errors.New("no results")
	}
	s := r.Settings
	p := newPlot(fmt.Sprintf("One-way relay of chat stanzas: %d streams, %g s per peer × %d rounds",
		s.Streams, s.Seconds, s.Rounds))
	p.Y.Label.Text = "MB/s received by the backend (1 MB = 10⁶ bytes)"
	p.X.Label.Text = "above each bar: MB/s, and the proxy's CPU seconds per GB relayed"
	grid := plotter.NewGrid()
	grid.Vertical.Width = 0 // a line through the middle of each group is noise
	p.Add(grid)
	// Every tick labelled, as a plain number: the default labels only
	// two or three, with decimals.
	p.Y.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		ts := plot.DefaultTicks{}.Ticks(lo, hi)
		for i := range ts {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
		return ts
	})

	var sizes []int
	for _, x := range r.Results {
		if !slices.Contains(sizes, x.StanzaBytes) {
			sizes = append(sizes, x.StanzaBytes)
		}
	}
	var peers []string
	for _, name := range throughputPeers {
		if slices.ContainsFunc(r.Results, func(x throughputResult) bool { return x.Peer == name }) {
			peers = append(peers, name)
		}
	}
	groups := make([]string, len(sizes))
	for i, size := range sizes {
		groups[i] = fmt.Sprintf("%d-byte stanzas", size)
	}

	// Bars are placed in data units: group i spans i-0.5 to i+0.5, and each
	// peer's bar takes step of it. Their width is in page units, so it is
	// derived from the figure's width (less about an inch for the Y axis).
	const figWidth, figHeight = 9 * vg.Inch, 5.5 * vg.Inch
	step := 0.8 / float64(len(peers))
	perUnit := float64(figWidth-vg.Inch) / float64(len(sizes))
	width := vg.Length(0.9 * step * perUnit)

	ymax := 0.0
	var labels plotter.XYLabels
	for k, name := range peers {
		shift := (float64(k) - float64(len(peers)-1)/2) * step
		vals := make(plotter.Values, len(sizes))
		for i, size := range sizes {
			x := findThroughput(r.Results, name, size)
			if x == nil {
				continue
			}
			vals[i] = x.MBPerS
			ymax = max(ymax, x.MBPerS)
			label := fmt.Sprintf("%.0f", x.MBPerS)
			if name != "direct" {
				label += fmt.Sprintf("\n%.2f s/GB", x.ProxyCPUPerGB)
			}
			labels.XYs = append(labels.XYs, plotter.XY{X: float64(i) + shift, Y: x.MBPerS})
			labels.Labels = append(labels.Labels, label)
		}
		bar, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		bar.XMin = shift
		bar.Color = throughputColor(name)
		bar.LineStyle.Width = vg.Points(0.5)
		p.Add(bar)
		p.Legend.Add(name, bar)
	}
	p.NominalX(groups...)
	p.X.Min, p.X.Max = -0.5, float64(len(sizes))-0.5
	// Headroom for the labels and the legend above the bars.
	p.Y.Min, p.Y.Max = 0, ymax*1.3
	p.Legend.Top = true
	p.Legend.Left = false

	l, err := plotter.NewLabels(labels)
	if err != nil {
		return err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign = draw.XCenter
		l.TextStyle[i].YAlign = draw.YBottom
		l.TextStyle[i].Font.Size = vg.Points(9)
	}
	l.Offset = vg.Point{Y: vg.Points(3)}
	p.Add(l)
	return p.Save(figWidth, figHeight, path)
}

// throughputColor is peerColor, with a lighter blue for Guard raw.
func throughputColor(name string) color.Color {
	if name == "guard-raw" {
		return color.RGBA{0x8f, 0xc1, 0xe6, 0xff}
	}
	return peerColor(name)
}
