package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/guard-xmpp/guard/proxy"
)

// The status page: GET / and GET /status render it on the server, a few
// lines of script fetch GET /status?part=body every two seconds and swap
// it in; GET /status.json is the same snapshot as JSON.

const statusRefresh = 2 * time.Second

func statusHandlers(mux *http.ServeMux, status func() proxy.Status) {
	var renders atomic.Uint64
	page := func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		name := "page"
		if r.URL.Query().Get("part") == "body" {
			name = "body"
		}
		view := statusView{Status: status(), RefreshMs: int(statusRefresh / time.Millisecond), Rendered: renders.Add(1)}
		if err := statusTemplate.ExecuteTemplate(&b, name, view); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b.Bytes())
	}
	mux.HandleFunc("GET /{$}", page)
	mux.HandleFunc("GET /status", page)
	mux.HandleFunc("GET /status.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(status())
	})
}

// bar is one series of a chart, stacked on the ones before it.
type bar struct {
	v     []int
	color string
}

// chart draws stacked series as an SVG bar chart, one bar per slot, with
// the highest total written beside it.
func chart(label string, series ...bar) template.HTML {
	const w, h, bw = 300, 48, 10
	top := 0
	for i := range series[0].v {
		sum := 0
		for _, s := range series {
			sum += s.v[i]
		}
		top = max(top, sum)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<figure class="chart"><svg width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`, w, h, w, h, template.HTMLEscapeString(label))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#fff" stroke="#ddd"/>`, w, h)
	for i := range series[0].v {
		y := h
		for _, s := range series {
			bh := 0
			if top > 0 {
				bh = (h - 2) * s.v[i] / top
			}
			y -= bh
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`, i*bw, y, bw-1, bh, s.color)
		}
	}
	fmt.Fprintf(&b, `</svg><figcaption>%s · peak %d</figcaption></figure>`, template.HTMLEscapeString(label), top)
	return template.HTML(b.String())
}

// statusView is what the page's template renders.
type statusView struct {
	proxy.Status
	RefreshMs int
	Rendered  uint64 // the page's renders so far, a sign of the live refresh
}

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"age": func(d time.Duration) string {
		if d < time.Hour {
			return d.Round(time.Second).String()
		}
		return d.Round(time.Minute).String()
	},
	"bytes": func(n int64) string {
		switch {
		case n < 1<<10:
			return fmt.Sprintf("%d B", n)
		case n < 1<<20:
			return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
		default:
			return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		}
	},
	"pct": func(n, of int) int {
		if of <= 0 {
			return 0
		}
		return min(100, 100*n/of)
	},
	"cap": func(n int) string {
		if n <= 0 {
			return "no cap"
		}
		return fmt.Sprint(n)
	},
	// ends draws the recent ends as an SVG bar chart: clean ends (green)
	// under the others (red), one bar per slot.
	"ends": func(slots []proxy.Slot) template.HTML {
		clean, others := make([]int, len(slots)), make([]int, len(slots))
		for i, s := range slots {
			clean[i], others[i] = s.Clean, s.Others
		}
		return chart("stream ends per 10 seconds", bar{clean, "#3a3"}, bar{others, "#c33"})
	},
	"connections": func(slots []proxy.Slot) template.HTML {
		v := make([]int, len(slots))
		for i, s := range slots {
			v[i] = s.PeakOpen
		}
		return chart("client connections, the peak of each 10 seconds", bar{v, "#48c"})
	},
	"waiting": func(slots []proxy.Slot) template.HTML {
		v := make([]int, len(slots))
		for i, s := range slots {
			v[i] = s.PeakWaiting
		}
		return chart("clients waiting for admission, the peak of each 10 seconds", bar{v, "#d90"})
	},
}).Parse(`{{define "page"}}<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Guard status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .2em} h2{font-size:1.1em;margin:1.4em 0 .4em}
table{border-collapse:collapse;background:#fff;margin-bottom:.5em} th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#eee} td.n{text-align:right;font-variant-numeric:tabular-nums}
.up{color:#161} .down{color:#b11;font-weight:bold} .badge{padding:.1em .5em;border-radius:.3em;background:#ddd}
.draining{background:#f5c26b} .bar{display:inline-block;height:.7em;background:#48c;vertical-align:middle}
.muted{color:#777} .charts{display:flex;flex-wrap:wrap;gap:1em} figure.chart{margin:0}
figcaption{font-size:.85em;color:#555}
</style></head><body>
<main id="s">{{template "body" .}}</main>
<script>
setInterval(async () => {
  try {
    const r = await fetch('/status?part=body', {cache: 'no-store'});
    if (r.ok) document.getElementById('s').innerHTML = await r.text();
  } catch (e) {}
}, {{.RefreshMs}});
</script>
</body></html>{{end}}
{{define "body"}}
<h1>Guard</h1>
<p>{{.Time.UTC.Format "2006-01-02 15:04:05 UTC"}} ·
{{if .Draining}}<span class="badge draining">draining</span>{{else}}<span class="badge">serving</span>{{end}} ·
<span id="open">{{.Open}}</span> client connections · <span class="muted">render <span id="render">{{.Rendered}}</span>, every {{.RefreshMs}} ms</span></p>

<h2>Listeners</h2>
<table><tr><th>listener</th><th>address</th><th>stream</th><th>backend</th><th>streams</th></tr>
{{range .Listeners}}<tr><td>{{.Name}}</td><td>{{.Address}}</td><td>{{.Stream}}</td><td>{{.Backend}}</td><td class="n">{{.Streams}}</td></tr>
{{end}}</table>

{{range .Backends}}
<h2>Backend {{.Name}}</h2>
<p>{{.Streams}} streams admitted of {{cap .MaxStreams}} · <span class="queue">{{.Waiting}} waiting</span></p>
<table class="nodes"><tr><th>node</th><th>state</th><th>streams</th><th>max_streams</th><th>learned cap</th><th>load</th><th>failures in a row</th></tr>
{{range .Nodes}}<tr><td>{{.Address}}</td>
<td>{{if .Up}}<span class="up">up</span>{{else if .Ejected}}<span class="down">ejected</span>{{else}}<span class="down">down</span>{{end}}{{if not .Healthy}} <span class="muted">(last check failed)</span>{{end}}</td>
<td class="n">{{.Streams}}</td><td class="n">{{cap .MaxStreams}}</td>
<td class="n">{{if .LearnedMaxStreams}}{{.LearnedMaxStreams}}{{else}}<span class="muted">off</span>{{end}}</td>
<td>{{if .LearnedMaxStreams}}<span class="bar" style="width:{{pct .Streams .LearnedMaxStreams}}px"></span> {{pct .Streams .LearnedMaxStreams}}%{{else if .MaxStreams}}<span class="bar" style="width:{{pct .Streams .MaxStreams}}px"></span> {{pct .Streams .MaxStreams}}%{{end}}</td>
<td class="n">{{.Failures}}</td></tr>
{{end}}</table>
{{end}}

<h2>Last five minutes</h2>
<div class="charts">{{connections .Slots}}{{waiting .Slots}}{{ends .Slots}}</div>
<table class="ends"><tr><th>reason</th><th>streams</th></tr>
{{range .Ends}}<tr><td>{{.Reason}}</td><td class="n">{{.Count}}</td></tr>
{{else}}<tr><td colspan="2" class="muted">none</td></tr>{{end}}</table>

<h2>Oldest streams</h2>
{{template "streams" .Oldest}}
<h2>Busiest streams</h2>
{{template "streams" .Busiest}}
{{end}}
{{define "streams"}}<table class="streams"><tr><th>listener</th><th>client</th><th>from</th><th>to</th><th>node</th><th>age</th><th>from client</th><th>to client</th></tr>
{{range .}}<tr><td>{{.Listener}}</td><td>{{.Client}}</td><td>{{.From}}</td><td>{{.To}}</td><td>{{.Node}}</td><td class="n">{{age .Age}}</td><td class="n">{{bytes .BytesIn}}</td><td class="n">{{bytes .BytesOut}}</td></tr>
{{else}}<tr><td colspan="8" class="muted">none</td></tr>{{end}}</table>{{end}}`))
