package bench

import (
	"errors"
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// plotIdleRSS draws, per peer, the proxy's resident memory (MiB) against
// the idle streams it holds open: the baseline (one warm-up stream, at 0)
// and each step of BenchmarkIdleStreamRSS, one line with points per peer.
// The legend gives bytes per stream, and the fleet's figure when the file
// has one.
func plotIdleRSS(r idleFile, path string) error {
	if len(r.Peers) == 0 {
		return errors.New("no peers in the idle results")
	}
	for _, peer := range r.Peers {
		if len(peer.Points) == 0 {
			return fmt.Errorf("peer %q has no points", peer.Peer)
		}
	}
	title := "Proxy memory with idle relayed XMPP streams, one process per proxy"
	if r.Settings != nil && r.Settings.SourceAddresses > 0 {
		title += fmt.Sprintf(" (clients from %d addresses)", r.Settings.SourceAddresses)
	}
	if r.Fleet != nil && len(r.Fleet.Peers) > 0 {
		title += fmt.Sprintf("\nfleet: %s streams through %d processes of each proxy, memory per stream in the legend",
			idleCommas(float64(r.Fleet.Streams)), r.Fleet.Processes)
	}
	p := newPlot(title)
	p.X.Label.Text = "open idle streams (0: the baseline, one warm-up stream)"
	p.Y.Label.Text = "proxy RSS (MiB)"
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(10)
	p.Legend.YOffs = vg.Points(-10)

	fleet := map[string]idleFleetPeer{}
	if r.Fleet != nil {
		for _, f := range r.Fleet.Peers {
			fleet[f.Peer] = f
		}
	}
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.RingGlyph{}}
	xmax, ymax := 0.0, 0.0
	ticks := []plot.Tick{{Value: 0, Label: "0"}}
	for _, pt := range r.Peers[0].Points {
		ticks = append(ticks, plot.Tick{Value: float64(pt.Streams), Label: idleCommas(float64(pt.Streams))})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	for i, peer := range r.Peers {
		pts := plotter.XYs{{X: 0, Y: float64(peer.BaseRSS) / (1 << 20)}}
		for _, pt := range peer.Points {
			pts = append(pts, plotter.XY{X: float64(pt.Streams), Y: float64(pt.RSS) / (1 << 20)})
		}
		for _, pt := range pts {
			xmax, ymax = max(xmax, pt.X), max(ymax, pt.Y)
		}
		l, s, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		c := peerColor(peer.Peer)
		l.Color = c
		l.Width = vg.Points(2)
		s.Color = c
		s.Shape = shapes[i%len(shapes)]
		s.Radius = vg.Points(3.5)
		p.Add(l, s)
		top := peer.Points[len(peer.Points)-1].Streams
		label := fmt.Sprintf("%s: %s B/stream at %s streams (slope %s)", peer.Peer,
			idleCommas(peer.BytesPerStream), idleCommas(float64(top)), idleCommas(peer.Slope))
		if f, ok := fleet[peer.Peer]; ok {
			label += fmt.Sprintf("; fleet %s B/stream", idleCommas(f.BytesPerStream))
		}
		p.Legend.Add(label, l, s)
	}
	p.X.Min, p.X.Max = 0, xmax*1.03
	p.Y.Min, p.Y.Max = 0, ymax*1.25 // room for the legend above the lines
	step := 1.0
	for _, s := range []float64{2, 5, 10, 20, 50, 100, 200, 500, 1000} {
		if p.Y.Max/step <= 12 {
			break
		}
		step = s
	}
	var yt []plot.Tick
	for v := 0.0; v <= p.Y.Max; v += step {
		yt = append(yt, plot.Tick{Value: v, Label: idleCommas(v)})
	}
	p.Y.Tick.Marker = plot.ConstantTicks(yt)
	return p.Save(9*vg.Inch, 5.5*vg.Inch, path)
}

// idleCommas formats v rounded to a whole number with commas: 11,325.
func idleCommas(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
