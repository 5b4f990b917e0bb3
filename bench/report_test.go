package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"
)

// docs/performance.md is generated: `make bench` records the machine
// (TestRecordMachine) and the micro benchmarks (TestRecordMicro), runs the
// process benchmarks, draws the figures (TestPlots) and renders the page
// (TestReport with GUARD_BENCH_REPORT=1) from bench/results/*.json through
// performance.md.tmpl. Without GUARD_BENCH_REPORT, TestReport renders the
// committed results and fails if docs/performance.md differs, so the page
// cannot drift from them. It compares text only, never timing.

const (
	reportTemplateFile = "performance.md.tmpl"
	reportDoc          = "../docs/performance.md"
	reportResults      = "results"
)

// The reference figures, quoted as references (not measured here).
const (
	refHAProxyIdleBytes   = 3400  // HAProxy 2.6 mode tcp, bytes per idle stream
	refNginxIdleBytes     = 10200 // nginx stream
	refNaiveGoIdleBytes   = 26600 // a naive Go relay (io.Copy both ways, 32 KiB buffers)
	refHAProxyAddedP50us  = 43    // 50 clients, 1000 msg/s echo
	refHAProxyAddedP99us  = 90
	refHAProxyCPUms1000RT = 38
	refHAProxyOfDirect16K = 0.25 // 16 KiB stanzas, CPU-bound box
	refStormClients       = 2000
	refStormCapacity      = 200
	refStormSilent        = 1800 // HAProxy and nginx close them without a word
	// The framing cost the relay was built to stay under.
	repGoalFramingCost = 0.15
)

// ---- result files ----

// reportMachine is results/machine.json (TestRecordMachine).
type reportMachine struct {
	Date        string    `json:"date"`
	Commit      string    `json:"commit"`
	CPUModel    string    `json:"cpu_model"`
	CPUs        int       `json:"logical_cpus"`
	MemoryBytes int64     `json:"memory_bytes"`
	Kernel      string    `json:"kernel"`
	Debian      string    `json:"debian"`
	Go          string    `json:"go"`
	HAProxy     string    `json:"haproxy"`
	Prosody     string    `json:"prosody"`
	OpenFiles   uint64    `json:"open_files_limit"`
	LoadStart   []float64 `json:"load_average_start"`
}

// reportMicro is results/micro.json (TestRecordMicro): the median, minimum
// and maximum of every unit of every benchmark line in results/micro.txt.
type reportMicro struct {
	Date       string             `json:"date"`
	Command    string             `json:"command,omitempty"`
	CPU        string             `json:"cpu,omitempty"`
	Benchmarks []reportMicroBench `json:"benchmarks"`
}

type reportMicroBench struct {
	Package string `json:"package"`
	// Name is as go test prints it, without the -GOMAXPROCS suffix, e.g.
	// "BenchmarkRelayThroughput/guard-raw".
	Name       string             `json:"name"`
	Runs       int                `json:"runs"`
	Iterations int64              `json:"iterations"` // median
	Median     map[string]float64 `json:"median"`
	Min        map[string]float64 `json:"min"`
	Max        map[string]float64 `json:"max"`
}

type reportLatency struct {
	Date     string                        `json:"date"`
	Settings latencySettings               `json:"settings"`
	Rounds   int                           `json:"rounds"`
	Peers    []latResult                   `json:"peers"`
	Added    map[string]map[string]float64 `json:"added_over_direct"`
}

// reportWebSocket is results/websocket.json (BenchmarkWebSocket).
type reportWebSocket = wsResults

type reportStorm struct {
	Date     string        `json:"date"`
	Settings stormSettings `json:"settings"`
	Rounds   int           `json:"rounds"`
	Totals   []stormTally  `json:"totals"`
}

type reportTLS struct {
	Handshakes *struct {
		Date     string      `json:"date"`
		Settings tlsSettings `json:"settings"`
		Runs     []tlsRun    `json:"runs"`
	} `json:"handshakes"`
	IdleStreams *struct {
		Date    string          `json:"date"`
		Smoke   bool            `json:"smoke"`
		Cert    string          `json:"cert"`
		Results []idleTLSResult `json:"results"`
	} `json:"idle_streams"`
}

// reportThroughput is results/throughput.json (BenchmarkThroughput).
type reportThroughput struct {
	Date     string `json:"date"`
	Settings struct {
		Streams        int     `json:"streams"`
		StanzaSizes    []int   `json:"stanza_sizes"`
		SecondsPerPeer float64 `json:"seconds_per_peer"`
		Rounds         int     `json:"rounds"`
		Smoke          bool    `json:"smoke"`
	} `json:"settings"`
	Results []reportThroughputResult `json:"results"`
	Ratios  map[string]float64       `json:"ratios"`
}

type reportThroughputResult struct {
	Peer            string  `json:"peer"`
	StanzaBytes     int     `json:"stanza_bytes"`
	Bytes           int64   `json:"bytes"`
	Seconds         float64 `json:"seconds"`
	MBPerS          float64 `json:"mb_per_s"`
	RatioToDirect   float64 `json:"ratio_to_direct"`
	ProxyCPUSeconds float64 `json:"proxy_cpu_seconds"`
	ProxyCPUSPerGB  float64 `json:"proxy_cpu_s_per_gb"`
}

// reportIdle is results/idle.json (BenchmarkIdleStreamRSS).
type reportIdle struct {
	Date     string `json:"date"`
	Settings struct {
		Steps           []int `json:"steps"`
		SourceAddresses int   `json:"source_addresses"`
		Smoke           bool  `json:"smoke"`
	} `json:"settings"`
	Peers []reportIdlePeer `json:"peers"`
	Fleet *struct {
		Streams   int `json:"streams"`
		Processes int `json:"processes"`
		Peers     []struct {
			Peer           string  `json:"peer"`
			RSSTotal       int64   `json:"rss_bytes_total"`
			BaselineTotal  int64   `json:"baseline_rss_bytes_total"`
			BytesPerStream float64 `json:"bytes_per_stream"`
		} `json:"peers"`
	} `json:"fleet"`
}

type reportIdlePeer struct {
	Peer        string `json:"peer"`
	BaselineRSS int64  `json:"baseline_rss_bytes"`
	Points      []struct {
		Streams int   `json:"streams"`
		RSS     int64 `json:"rss_bytes"`
	} `json:"points"`
	BytesPerStream float64 `json:"bytes_per_stream"`
	Slope          float64 `json:"slope_bytes_per_stream"`
	AfterCloseRSS  int64   `json:"after_close_rss_bytes"`
	OpenCPUSeconds float64 `json:"open_cpu_seconds"`
}

// openCPUms is the peer's CPU time in ms per 1,000 streams opened (the
// top step's streams, opened over the steps); NaN when not measured.
func (p *reportIdlePeer) openCPUms() float64 {
	top := 0
	for _, pt := range p.Points {
		top = max(top, pt.Streams)
	}
	if p.OpenCPUSeconds <= 0 || top == 0 {
		return math.NaN()
	}
	return p.OpenCPUSeconds * 1e6 / float64(top)
}

// readReportFile decodes dir/name into v; false (and no error) when the file
// does not exist.
func readReportFile(dir, name string, v any) (bool, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("%s: %w", name, err)
	}
	return true, nil
}

// ---- rendering ----

// reportOptions are what the results files do not hold.
type reportOptions struct {
	// End is when the run ended and LoadEnd the load average then
	// (TestReport takes them in write mode); zero and nil: not recorded.
	End     time.Time
	LoadEnd []float64
}

// renderReport renders performance.md.tmpl from the results files in
// resultsDir, without the end-of-run load average.
func renderReport(resultsDir string) ([]byte, error) {
	return renderReportOptions(resultsDir, reportOptions{})
}

func renderReportOptions(resultsDir string, o reportOptions) ([]byte, error) {
	d, err := buildRepPage(resultsDir, o)
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New(reportTemplateFile).Funcs(repFuncs).ParseFiles(reportTemplateFile)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, d); err != nil {
		return nil, err
	}
	// Collapse runs of blank lines that conditional sections leave.
	out := regexp.MustCompile(`\n{3,}`).ReplaceAll(buf.Bytes(), []byte("\n\n"))
	return append(bytes.TrimRight(out, "\n"), '\n'), nil
}

// repPage is what the template sees.
type repPage struct {
	Machine    *repMachineView
	Files      []repFileView
	Micro      *repMicroView
	Throughput *repThroughputView
	Idle       *repIdleView
	Storm      *repStormView
	StormSlow  *repStormView // the storm against a backend slow to free its slots
	TLS        *repTLSView
	IdleTLS    *repIdleTLSView
	Latency    *repLatencyView
	WebSocket  *repWebSocketView
	Goals      []repGoalRow
	GoalsMet   int
	GoalsKnown int
	// Missing lists the results files absent from this run.
	Missing []string
	// Mixed is true when a results file was written before the run began;
	// Complete when every file is present and none is older than the run.
	Mixed, Complete bool
	Ref             map[string]string
}

type repFileView struct {
	Name, Date string
	// Before is true when the file was written before machine.json, i.e.
	// not by the run this page describes.
	Before bool
}

func buildRepPage(dir string, o reportOptions) (*repPage, error) {
	r := &repPage{Ref: map[string]string{
		"haproxy_idle":       repKB(refHAProxyIdleBytes),
		"nginx_idle":         repKB(refNginxIdleBytes),
		"naive_idle":         repKB(refNaiveGoIdleBytes),
		"haproxy_added_p50":  fmt.Sprintf("%d µs", refHAProxyAddedP50us),
		"haproxy_added_p99":  fmt.Sprintf("%d µs", refHAProxyAddedP99us),
		"haproxy_cpu":        fmt.Sprintf("%d ms", refHAProxyCPUms1000RT),
		"haproxy_of_direct":  fmt.Sprintf("%.2f×", refHAProxyOfDirect16K),
		"storm_clients":      repInt(refStormClients),
		"storm_capacity":     repInt(refStormCapacity),
		"storm_silent":       repInt(refStormSilent),
		"framing_goal":       repPct(repGoalFramingCost),
		"haproxy_idle_bytes": repInt(refHAProxyIdleBytes),
		"nginx_idle_bytes":   repInt(refNginxIdleBytes),
		"naive_idle_bytes":   repInt(refNaiveGoIdleBytes),
	}}
	var start time.Time
	var m reportMachine
	if ok, err := readReportFile(dir, "machine.json", &m); err != nil {
		return nil, err
	} else if ok {
		r.Machine = newRepMachineView(m, o.End, o.LoadEnd)
		start, _ = time.Parse(time.RFC3339, m.Date)
	} else {
		r.Missing = append(r.Missing, "machine.json")
	}
	file := func(name, date string) {
		f := repFileView{Name: name, Date: date}
		if f.Date == "" {
			f.Date = "not recorded"
		} else if t, err := time.Parse(time.RFC3339, date); err == nil && !start.IsZero() && t.Before(start) {
			f.Before = true
		}
		r.Files = append(r.Files, f)
	}

	var mi reportMicro
	if ok, err := readReportFile(dir, "micro.json", &mi); err != nil {
		return nil, err
	} else if ok {
		r.Micro = newRepMicroView(mi)
		file("micro.json", mi.Date)
	} else {
		r.Missing = append(r.Missing, "micro.json")
	}
	var th reportThroughput
	if ok, err := readReportFile(dir, "throughput.json", &th); err != nil {
		return nil, err
	} else if ok {
		r.Throughput = newRepThroughputView(th)
		file("throughput.json", th.Date)
	} else {
		r.Missing = append(r.Missing, "throughput.json")
	}
	var id reportIdle
	if ok, err := readReportFile(dir, "idle.json", &id); err != nil {
		return nil, err
	} else if ok {
		r.Idle = newRepIdleView(id)
		file("idle.json", id.Date)
	} else {
		r.Missing = append(r.Missing, "idle.json")
	}
	var st reportStorm
	if ok, err := readReportFile(dir, "storm.json", &st); err != nil {
		return nil, err
	} else if ok {
		r.Storm = newRepStormView(st)
		file("storm.json", st.Date)
	} else {
		r.Missing = append(r.Missing, "storm.json")
	}
	var ss reportStorm
	if ok, err := readReportFile(dir, "storm-slow.json", &ss); err != nil {
		return nil, err
	} else if ok {
		r.StormSlow = newRepStormView(ss)
		file("storm-slow.json", ss.Date)
	} else {
		r.Missing = append(r.Missing, "storm-slow.json")
	}
	var tl reportTLS
	if ok, err := readReportFile(dir, "tls.json", &tl); err != nil {
		return nil, err
	} else if ok {
		if tl.Handshakes != nil {
			r.TLS = newRepTLSView(tl)
			file("tls.json (handshakes)", tl.Handshakes.Date)
		}
		if tl.IdleStreams != nil {
			r.IdleTLS = newRepIdleTLSView(tl)
			file("tls.json (idle streams)", tl.IdleStreams.Date)
		}
	} else {
		r.Missing = append(r.Missing, "tls.json")
	}
	var la reportLatency
	if ok, err := readReportFile(dir, "latency.json", &la); err != nil {
		return nil, err
	} else if ok {
		r.Latency = newRepLatencyView(la)
		file("latency.json", la.Date)
	} else {
		r.Missing = append(r.Missing, "latency.json")
	}
	var ws reportWebSocket
	if ok, err := readReportFile(dir, "websocket.json", &ws); err != nil {
		return nil, err
	} else if ok {
		r.WebSocket = newRepWebSocketView(ws)
		file("websocket.json", ws.Date)
	} else {
		r.Missing = append(r.Missing, "websocket.json")
	}
	for _, f := range r.Files {
		r.Mixed = r.Mixed || f.Before
	}
	r.Complete = len(r.Missing) == 0 && !r.Mixed
	r.Goals = buildRepGoals(r)
	for _, g := range r.Goals {
		if g.Known {
			r.GoalsKnown++
			if g.Met {
				r.GoalsMet++
			}
		}
	}
	return r, nil
}

// ---- machine ----

type repMachineView struct {
	reportMachine
	Memory, LoadStartS, LoadEndS, OpenFilesS string
	// End is "ended DATE (N min)" or "end not recorded"; Minutes is N.
	End, Minutes string
	// LoadAbove is true when a 1-minute load average exceeded the CPUs.
	LoadAbove, LoadEndKnown bool
	MaxLoad                 string
}

func newRepMachineView(m reportMachine, endTime time.Time, end []float64) *repMachineView {
	v := &repMachineView{reportMachine: m, Memory: repGiB(m.MemoryBytes), OpenFilesS: repInt(int64(m.OpenFiles)), End: "end not recorded"}
	if start, err := time.Parse(time.RFC3339, m.Date); err == nil && !endTime.IsZero() {
		v.Minutes = fmt.Sprintf("%.1f", endTime.Sub(start).Minutes())
		v.End = fmt.Sprintf("ended %s (%s min)", endTime.UTC().Format(time.RFC3339), v.Minutes)
	}
	v.LoadStartS = repLoad(m.LoadStart)
	v.LoadEndS = repLoad(end)
	v.LoadEndKnown = len(end) > 0
	mx := 0.0
	if len(m.LoadStart) > 0 {
		mx = m.LoadStart[0]
	}
	if len(end) > 0 {
		mx = max(mx, end[0])
	}
	v.MaxLoad = fmt.Sprintf("%.2f", mx)
	v.LoadAbove = m.CPUs > 0 && mx > float64(m.CPUs)
	return v
}

func repLoad(l []float64) string {
	if len(l) == 0 {
		return "not recorded"
	}
	s := make([]string, len(l))
	for i, x := range l {
		s[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(s, " / ")
}

// ---- micro benchmarks ----

type repMicroView struct {
	Command string
	Runs    int
	CPU     string
	// The in-process relay (proxy/bench_test.go).
	Relay               []repRelayRow
	HasRelay            bool
	FramingCost         string
	FramingMet          bool
	FramingKnown        bool
	AddedRTFramed       string
	AddedRTRaw          string
	RTKnown             bool
	AllocsFramed        string
	AllocsZero          bool
	AllocsKnown         bool
	TokenizerGBs        string
	TokenizerChunkGBs   string
	TokenizerAllocsZero bool
	Tokenizer           []repMicroRow
	All                 []repMicroRow
}

type repRelayRow struct {
	Scenario, Direct, Raw, Framed, FramedRaw, FramedDirect, RawDirect string
}

type repMicroRow struct {
	Package, Name, Runs, NsOp, MBs, BOp, AllocsOp, Other, Spread string
}

// median returns the median of unit for the benchmark named name (in any
// package), NaN if absent.
func (m reportMicro) median(name, unit string) float64 {
	for _, b := range m.Benchmarks {
		if b.Name == name {
			if v, ok := b.Median[unit]; ok {
				return v
			}
		}
	}
	return math.NaN()
}

func newRepMicroView(m reportMicro) *repMicroView {
	v := &repMicroView{Command: m.Command, CPU: strings.TrimSpace(m.CPU)}
	for _, b := range m.Benchmarks {
		v.Runs = max(v.Runs, b.Runs)
	}
	get := func(bench, peer, unit string) float64 {
		return m.median("Benchmark"+bench+"/"+peer, unit)
	}
	tp := func(p string) float64 { return get("RelayThroughput", p, "MB/s") }
	rt := func(p string) float64 { return get("RelayRoundTrip", p, "ns/op") / 1000 }
	al := func(p string) float64 { return get("RelayRoundTrip", p, "allocs/op") }
	bo := func(p string) float64 { return get("RelayRoundTrip", p, "B/op") }
	row := func(name string, f func(string) float64, prec int, ratios bool) repRelayRow {
		d, r, fr := f("direct"), f("guard-raw"), f("guard-framed")
		x := repRelayRow{Scenario: name, Direct: repNum(d, prec), Raw: repNum(r, prec), Framed: repNum(fr, prec)}
		if ratios {
			x.FramedRaw, x.FramedDirect, x.RawDirect = repRatio(fr, r), repRatio(fr, d), repRatio(r, d)
		}
		return x
	}
	v.Relay = []repRelayRow{
		row("throughput, realistic stanza mix one way (MB/s)", tp, 0, true),
		row("round trip of a 200-byte stanza (µs, whole process)", rt, 1, true),
		row("allocations per message (whole process)", al, 0, false),
		row("bytes allocated per message (whole process)", bo, 0, false),
	}
	v.HasRelay = !math.IsNaN(tp("guard-framed")) || !math.IsNaN(rt("guard-framed"))
	if c := 1 - tp("guard-framed")/tp("guard-raw"); !math.IsNaN(c) {
		v.FramingKnown, v.FramingCost, v.FramingMet = true, repPct(c), c < repGoalFramingCost
	}
	if a := rt("guard-framed") - rt("direct"); !math.IsNaN(a) {
		v.RTKnown = true
		v.AddedRTFramed = fmt.Sprintf("%.1f µs", a)
		v.AddedRTRaw = fmt.Sprintf("%.1f µs", rt("guard-raw")-rt("direct"))
	}
	if a := al("guard-framed"); !math.IsNaN(a) {
		v.AllocsKnown, v.AllocsZero, v.AllocsFramed = true, a == 0, repNum(a, 0)
	}
	v.TokenizerGBs = repNum(m.median("BenchmarkTokenizer/whole", "MB/s")/1000, 2)
	v.TokenizerChunkGBs = repNum(m.median("BenchmarkTokenizer/chunk1500", "MB/s")/1000, 2)
	v.TokenizerAllocsZero = true
	for _, b := range m.Benchmarks {
		r := newRepMicroRow(b)
		v.All = append(v.All, r)
		if strings.HasPrefix(b.Name, "BenchmarkTokenizer") {
			v.Tokenizer = append(v.Tokenizer, r)
			if b.Median["allocs/op"] != 0 {
				v.TokenizerAllocsZero = false
			}
		}
	}
	return v
}

func newRepMicroRow(b reportMicroBench) repMicroRow {
	r := repMicroRow{Package: b.Package, Name: strings.TrimPrefix(b.Name, "Benchmark"), Runs: strconv.Itoa(b.Runs)}
	if i := strings.LastIndexByte(b.Package, '/'); i >= 0 {
		r.Package = b.Package[i+1:]
	}
	unit := func(u string, prec int) string {
		if x, ok := b.Median[u]; ok {
			return repNum(x, prec)
		}
		return "—"
	}
	r.NsOp = unit("ns/op", 1)
	if x := b.Median["ns/op"]; x >= 100 {
		r.NsOp = unit("ns/op", 0)
	}
	r.MBs, r.BOp, r.AllocsOp = unit("MB/s", 0), unit("B/op", 0), unit("allocs/op", 0)
	var other []string
	for _, u := range slices.Sorted(maps.Keys(b.Median)) {
		switch u {
		case "ns/op", "MB/s", "B/op", "allocs/op":
			continue
		}
		other = append(other, repNum(b.Median[u], 1)+" "+u)
	}
	r.Other = strings.Join(other, ", ")
	if med := b.Median["ns/op"]; med > 0 && b.Runs > 1 {
		r.Spread = repPct((b.Max["ns/op"] - b.Min["ns/op"]) / med)
	} else {
		r.Spread = "—"
	}
	return r
}

// repBenchLine is one result line of go test -bench output.
var repBenchLine = regexp.MustCompile(`^(Benchmark\S*?)(?:-(\d+))?\s+(\d+)\s+(.*)$`)

// parseRepBenchOutput reads go test -bench output (several packages, -count N)
// into the median, minimum and maximum of every unit of every benchmark. A
// line "# command: ..." records the command that produced it.
func parseRepBenchOutput(r io.Reader) (reportMicro, error) {
	var m reportMicro
	type acc struct {
		b     reportMicroBench
		units map[string][]float64
		iters []float64
		order []string
	}
	var all []*acc
	byKey := map[string]*acc{}
	pkg := ""
	pending := "" // a benchmark name whose figures are on a later line
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t")
		switch {
		case strings.HasPrefix(line, "# command: "):
			m.Command = strings.TrimPrefix(line, "# command: ")
			continue
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(line, "pkg: ")
			continue
		case strings.HasPrefix(line, "cpu: "):
			m.CPU = strings.TrimSpace(strings.TrimPrefix(line, "cpu: "))
			continue
		}
		if pending != "" && len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if f := strings.Fields(line); len(f) >= 3 {
				if _, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					line = pending + "\t" + strings.TrimSpace(line)
				}
			}
		}
		mt := repBenchLine.FindStringSubmatch(line)
		if mt == nil {
			if f := strings.Fields(line); len(f) == 1 && strings.HasPrefix(f[0], "Benchmark") {
				pending = f[0]
			}
			continue
		}
		pending = ""
		name := mt[1]
		iters, _ := strconv.ParseFloat(mt[3], 64)
		f := strings.Fields(mt[4])
		if len(f)%2 != 0 {
			return m, fmt.Errorf("odd value/unit pairs in %q", line)
		}
		key := pkg + "\x00" + name
		a := byKey[key]
		if a == nil {
			a = &acc{b: reportMicroBench{Package: pkg, Name: name}, units: map[string][]float64{}}
			byKey[key] = a
			all = append(all, a)
		}
		a.b.Runs++
		a.iters = append(a.iters, iters)
		for i := 0; i < len(f); i += 2 {
			x, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return m, fmt.Errorf("%q: %v", line, err)
			}
			a.units[f[i+1]] = append(a.units[f[i+1]], x)
		}
	}
	if err := sc.Err(); err != nil {
		return m, err
	}
	for _, a := range all {
		a.b.Iterations = int64(repMedian(a.iters))
		a.b.Median, a.b.Min, a.b.Max = map[string]float64{}, map[string]float64{}, map[string]float64{}
		for u, xs := range a.units {
			a.b.Median[u] = repMedian(xs)
			a.b.Min[u] = slices.Min(xs)
			a.b.Max[u] = slices.Max(xs)
		}
		m.Benchmarks = append(m.Benchmarks, a.b)
	}
	return m, nil
}

func repMedian(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ---- throughput (processes) ----

type repThroughputView struct {
	Streams        int
	SecondsPerPeer string
	Rounds         int
	Smoke          bool
	Sizes          []repThroughputSize
}

type repThroughputSize struct {
	Size string // "16 KiB"
	Rows []repThroughputRow
	// Guard framed and raw against HAProxy, HAProxy against direct.
	GuardVsHAProxy, RawVsHAProxy, HAProxyOfDirect, GuardOfDirect string
	GuardFaster, RawFaster, HasHAProxy, HasGuard, HasRaw         bool
	CPUGuardVsHAProxy                                            string
	GuardLessCPU, HasCPU                                         bool
	// Words for the ratios: "slower", "on par", "faster"; "less", "as much", "more".
	GuardSpeed, RawSpeed, CPUWord string
	Is16K                         bool
}

type repThroughputRow struct {
	Peer, MBs, OfDirect, OfHAProxy, CPUs, CPUPerGB string
}

var repPeerLabels = map[string]string{
	"direct":       "direct",
	"guard":        "Guard",
	"guard-framed": "Guard framed",
	"guard-raw":    "Guard raw",
	"haproxy":      "HAProxy",
	// The storm's peers that are not told the backend's capacity.
	"guard-adaptive":    "Guard adaptive",
	"haproxy-nomaxconn": "HAProxy no maxconn",
}

// repFramedLabel is repPeerLabel where Guard raw is measured beside Guard.
func repFramedLabel(p string) string {
	if p == "guard" {
		return "Guard framed"
	}
	return repPeerLabel(p)
}

func repPeerLabel(p string) string {
	if l, ok := repPeerLabels[p]; ok {
		return l
	}
	return p
}

func newRepThroughputView(t reportThroughput) *repThroughputView {
	v := &repThroughputView{Streams: t.Settings.Streams, SecondsPerPeer: repNum(t.Settings.SecondsPerPeer, 1),
		Rounds: t.Settings.Rounds, Smoke: t.Settings.Smoke}
	sizes := slices.Clone(t.Settings.StanzaSizes)
	for _, r := range t.Results {
		if !slices.Contains(sizes, r.StanzaBytes) {
			sizes = append(sizes, r.StanzaBytes)
		}
	}
	order := []string{"direct", "guard", "guard-raw", "haproxy"}
	for _, size := range sizes {
		s := repThroughputSize{Size: repSize(size), Is16K: size == 16384}
		by := map[string]reportThroughputResult{}
		var peers []string
		for _, r := range t.Results {
			if r.StanzaBytes == size {
				by[r.Peer] = r
				peers = append(peers, r.Peer)
			}
		}
		slices.SortStableFunc(peers, func(a, b string) int {
			ia, ib := slices.Index(order, a), slices.Index(order, b)
			if ia < 0 {
				ia = len(order)
			}
			if ib < 0 {
				ib = len(order)
			}
			return ia - ib
		})
		h, hasH := by["haproxy"]
		for _, p := range peers {
			r := by[p]
			row := repThroughputRow{Peer: repFramedLabel(p), MBs: repNum(r.MBPerS, 0), OfDirect: repNum(r.RatioToDirect, 2),
				OfHAProxy: "—", CPUs: "—", CPUPerGB: "—"}
			if hasH {
				row.OfHAProxy = repRatio(r.MBPerS, h.MBPerS)
			}
			if p != "direct" {
				row.CPUs, row.CPUPerGB = repNum(r.ProxyCPUSeconds, 1), repNum(r.ProxyCPUSPerGB, 2)
			}
			s.Rows = append(s.Rows, row)
		}
		g, hasG := by["guard"]
		raw, hasRaw := by["guard-raw"]
		s.HasHAProxy, s.HasGuard, s.HasRaw = hasH, hasG, hasRaw
		ratioOf := func(key string, a, b float64) float64 {
			if x, ok := t.Ratios[key]; ok {
				return x
			}
			return a / b
		}
		if hasH && hasG {
			x := ratioOf(fmt.Sprintf("guard_vs_haproxy_%d", size), g.MBPerS, h.MBPerS)
			s.GuardVsHAProxy, s.GuardFaster, s.GuardSpeed = repNum(x, 2)+"×", x >= 1, repCmp(x, "slower", "on par", "faster")
			if g.ProxyCPUSPerGB > 0 && h.ProxyCPUSPerGB > 0 {
				c := g.ProxyCPUSPerGB / h.ProxyCPUSPerGB
				s.HasCPU, s.CPUGuardVsHAProxy, s.GuardLessCPU = true, repNum(c, 2)+"×", c <= 1
				s.CPUWord = repCmp(c, "less", "as much", "more")
			}
		}
		if hasH && hasRaw {
			x := ratioOf(fmt.Sprintf("guard_raw_vs_haproxy_%d", size), raw.MBPerS, h.MBPerS)
			s.RawVsHAProxy, s.RawFaster, s.RawSpeed = repNum(x, 2)+"×", x >= 1, repCmp(x, "slower", "on par", "faster")
		}
		if hasH {
			s.HAProxyOfDirect = repNum(h.RatioToDirect, 2) + "×"
		}
		if hasG {
			s.GuardOfDirect = repNum(g.RatioToDirect, 2) + "×"
		}
		v.Sizes = append(v.Sizes, s)
	}
	return v
}

func repSize(b int) string {
	if b >= 1024 && b%1024 == 0 {
		return fmt.Sprintf("%d KiB", b/1024)
	}
	return fmt.Sprintf("%d B", b)
}

// ---- idle streams ----

type repIdleView struct {
	Steps           string
	MaxStreams      string
	SourceAddresses int
	Smoke           bool
	Peers           []repIdlePeerRow
	PointsHeader    string
	PointsSep       string
	Points          []string
	Guard, HAProxy  *reportIdlePeer
	GuardVsHAProxy  string
	GuardBelowNginx bool
	GuardBelowHAP   bool
	NginxWord       string // "less than", "about as much as", "more than"
	HAPWord         string // "less", "about as much", "more"
	GuardVsNginx    string
	GuardBytes      string
	GuardKB         string
	HAProxyBytes    string
	HAProxyKB       string
	HAProxyVsRef    string
	RawBytes        string
	HasRaw          bool
	FramingBytes    string
	// The CPU to open the streams, ms per 1,000: Guard's, HAProxy's and
	// their ratio, when both were measured.
	Workers                             int // streams the clients open at a time
	HasOpenCPU                          bool
	OpenCPUGuard, OpenCPUHAP, OpenRatio string
	GuardLessOpenCPU                    bool
	Fleet                               *repIdleFleetView
}

type repIdlePeerRow struct {
	Peer, Baseline, RSSAtMax, PerStream, Slope, VsHAProxy, VsNginx string
	// OpenCPU is the CPU time to open 1,000 of the streams ("—": not
	// measured).
	OpenCPU string
	// AfterClose is the RSS a minute after every stream closed, and
	// AfterVsBase that over the baseline; "—" when not measured.
	AfterClose, AfterVsBase string
}

type repIdleFleetView struct {
	Streams, Processes, PerProcess string
	Rows                           []repIdleFleetRow
	GuardVsHAProxy                 string
	GuardLess                      bool
	Word                           string
	Known                          bool
}

type repIdleFleetRow struct {
	Peer, Total, Baseline, PerStream, VsHAProxy string
}

func newRepIdleView(id reportIdle) *repIdleView {
	v := &repIdleView{SourceAddresses: id.Settings.SourceAddresses, Smoke: id.Settings.Smoke, Workers: idleWorkers}
	// The steps measured: those of the points (the settings say what was
	// asked for).
	measured := slices.Clone(id.Settings.Steps)
	for _, p := range id.Peers {
		for _, pt := range p.Points {
			if !slices.Contains(measured, pt.Streams) {
				measured = append(measured, pt.Streams)
			}
		}
	}
	measured = slices.DeleteFunc(measured, func(n int) bool {
		for _, p := range id.Peers {
			for _, pt := range p.Points {
				if pt.Streams == n {
					return false
				}
			}
		}
		return len(id.Peers) > 0
	})
	slices.Sort(measured)
	var steps []string
	for _, s := range measured {
		steps = append(steps, repInt(int64(s)))
	}
	v.Steps = strings.Join(steps, ", ")
	if len(measured) > 0 {
		v.MaxStreams = repInt(int64(slices.Max(measured)))
	}
	for i := range id.Peers {
		switch id.Peers[i].Peer {
		case "guard":
			v.Guard = &id.Peers[i]
		case "haproxy":
			v.HAProxy = &id.Peers[i]
		}
	}
	hBytes := math.NaN()
	if v.HAProxy != nil {
		hBytes = v.HAProxy.BytesPerStream
	}
	var header, sep []string
	header, sep = append(header, "streams"), append(sep, "---")
	rows := map[int][]string{}
	var streams []int
	for _, p := range id.Peers {
		row := repIdlePeerRow{Peer: repFramedLabel(p.Peer), Baseline: repMiB(p.BaselineRSS), RSSAtMax: "—",
			PerStream: repNum(p.BytesPerStream, 0), Slope: repNum(p.Slope, 0),
			VsHAProxy: repRatio(p.BytesPerStream, hBytes), VsNginx: repRatio(p.BytesPerStream, refNginxIdleBytes),
			AfterClose: "—", AfterVsBase: "—", OpenCPU: "—"}
		if ms := p.openCPUms(); !math.IsNaN(ms) {
			row.OpenCPU = repNum(ms, 0) + " ms"
		}
		if p.AfterCloseRSS > 0 && p.BaselineRSS > 0 {
			row.AfterClose = repMiB(p.AfterCloseRSS)
			row.AfterVsBase = repNum(float64(p.AfterCloseRSS)/float64(p.BaselineRSS), 2) + "×"
		}
		if n := len(p.Points); n > 0 {
			last := p.Points[0]
			for _, pt := range p.Points {
				if pt.Streams > last.Streams {
					last = pt
				}
			}
			row.RSSAtMax = repMiB(last.RSS)
		}
		v.Peers = append(v.Peers, row)
		header, sep = append(header, repFramedLabel(p.Peer)+" RSS"), append(sep, "---")
		for _, pt := range p.Points {
			if _, ok := rows[pt.Streams]; !ok {
				streams = append(streams, pt.Streams)
			}
			rows[pt.Streams] = append(rows[pt.Streams], "")
		}
	}
	slices.Sort(streams)
	for _, s := range streams {
		cells := []string{repInt(int64(s))}
		for _, p := range id.Peers {
			c := "—"
			for _, pt := range p.Points {
				if pt.Streams == s {
					c = repMiB(pt.RSS)
				}
			}
			cells = append(cells, c)
		}
		v.Points = append(v.Points, "| "+strings.Join(cells, " | ")+" |")
	}
	v.PointsHeader = "| " + strings.Join(header, " | ") + " |"
	v.PointsSep = "|" + strings.Repeat("---|", len(sep))
	if g := v.Guard; g != nil {
		v.GuardBytes, v.GuardKB = repNum(g.BytesPerStream, 0), repKB(g.BytesPerStream)
		v.GuardBelowNginx = g.BytesPerStream <= refNginxIdleBytes
		v.NginxWord = repCmp(g.BytesPerStream/refNginxIdleBytes, "less than", "about as much as", "more than")
		v.GuardVsNginx = repNum(g.BytesPerStream/refNginxIdleBytes, 2) + "×"
		if v.HAProxy != nil {
			v.GuardVsHAProxy = repNum(g.BytesPerStream/hBytes, 2) + "×"
			v.GuardBelowHAP = g.BytesPerStream <= hBytes
			v.HAPWord = repCmp(g.BytesPerStream/hBytes, "less", "about as much", "more")
		}
	}
	if v.Guard != nil && v.HAProxy != nil {
		g, h := v.Guard.openCPUms(), v.HAProxy.openCPUms()
		if !math.IsNaN(g) && !math.IsNaN(h) && h > 0 {
			v.HasOpenCPU, v.OpenCPUGuard, v.OpenCPUHAP = true, repNum(g, 0)+" ms", repNum(h, 0)+" ms"
			v.OpenRatio, v.GuardLessOpenCPU = repNum(g/h, 2)+"×", g <= h
		}
	}
	if v.HAProxy != nil {
		v.HAProxyBytes, v.HAProxyKB = repNum(hBytes, 0), repKB(hBytes)
		v.HAProxyVsRef = repNum(hBytes/refHAProxyIdleBytes, 2) + "×"
	}
	for _, p := range id.Peers {
		if p.Peer == "guard-raw" {
			v.HasRaw, v.RawBytes = true, repNum(p.BytesPerStream, 0)
			if v.Guard != nil {
				v.FramingBytes = repNum(v.Guard.BytesPerStream-p.BytesPerStream, 0)
			}
		}
	}
	if f := id.Fleet; f != nil {
		fv := &repIdleFleetView{Streams: repInt(int64(f.Streams)), Processes: strconv.Itoa(f.Processes)}
		if f.Processes > 0 {
			fv.PerProcess = repInt(int64(math.Ceil(float64(f.Streams) / float64(f.Processes))))
		}
		fh := math.NaN()
		for _, p := range f.Peers {
			if p.Peer == "haproxy" {
				fh = p.BytesPerStream
			}
		}
		for _, p := range f.Peers {
			fv.Rows = append(fv.Rows, repIdleFleetRow{Peer: repFramedLabel(p.Peer), Total: repMiB(p.RSSTotal),
				Baseline: repMiB(p.BaselineTotal), PerStream: repNum(p.BytesPerStream, 0), VsHAProxy: repRatio(p.BytesPerStream, fh)})
			if p.Peer == "guard" && !math.IsNaN(fh) && fh > 0 {
				fv.Known, fv.GuardVsHAProxy, fv.GuardLess = true, repNum(p.BytesPerStream/fh, 2)+"×", p.BytesPerStream <= fh
				fv.Word = repCmp(p.BytesPerStream/fh, "less", "about as much", "more")
			}
		}
		v.Fleet = fv
	}
	return v
}

// ---- storm ----

type repStormView struct {
	Settings stormSettings
	Rounds   int
	Rows     []repStormRow
	Shares   []repStormShareRow
	Guard    *stormTally
	HAProxy  *stormTally
	Direct   *stormTally
	// The peers not told C (absent from results written before they
	// were measured): Guard without max_streams (adaptive admission) and
	// HAProxy without maxconn on the server line.
	GuardAdaptive    *stormTally
	HAProxyNoMaxconn *stormTally
	// Computed statements.
	GuardClean           bool // no reset, no silent close, all served or refused with a stream error
	GuardConditions      string
	GuardSlowestRefusal  string
	GuardUnclean         int
	HAProxySilent        string
	HAProxySilentShare   string
	HAProxyTerminations  string
	NoneExceeded         bool
	Exceeded             string
	NoProxy              string // "Neither proxy" for two proxies, "No proxy" for more
	DirectResets         string
	GuardServedVsHAProxy string
	// Guard adaptive: clean as GuardClean, and no internal-server-error.
	AdaptiveClean            bool
	AdaptiveConditions       string
	AdaptiveInternalErrors   int
	AdaptiveServedVsGuard    string // served, of Guard's with max_streams
	AdaptiveSlowestRefusal   string
	NoMaxconnFailed          int    // resets and silent closes seen by its clients
	NoMaxconnFailedShare     string // of its clients
	NoMaxconnTerminations    string
	NoMaxconnServedVsHAProxy string // served, of HAProxy's with maxconn
}

type repStormRow struct {
	Proxy, Clients, Served, StreamErrors, Resets, Silent, Timeouts, Other, BackendMax, BackendResets string
}

type repStormShareRow struct {
	Proxy, Served, StreamErrors, Resets, Silent, Timeouts, ServedVsHAProxy string
}

func newRepStormView(s reportStorm) *repStormView {
	v := &repStormView{Settings: s.Settings, Rounds: max(s.Rounds, 1), NoneExceeded: true}
	var h *stormTally
	for i := range s.Totals {
		if s.Totals[i].Proxy == "haproxy" {
			h = &s.Totals[i]
		}
	}
	var exceeded []string
	proxies := 0
	for i := range s.Totals {
		t := &s.Totals[i]
		switch t.Proxy {
		case "guard":
			v.Guard = t
		case "haproxy":
			v.HAProxy = t
		case "direct":
			v.Direct = t
		case "guard-adaptive":
			v.GuardAdaptive = t
		case "haproxy-nomaxconn":
			v.HAProxyNoMaxconn = t
		}
		if t.Proxy != "direct" {
			proxies++
		}
		errs := repInt(int64(t.StreamErrors))
		if len(t.Conditions) > 0 {
			var cs []string
			for _, c := range slices.Sorted(maps.Keys(t.Conditions)) {
				cs = append(cs, fmt.Sprintf("`%s` %s", c, repInt(int64(t.Conditions[c]))))
			}
			errs += " (" + strings.Join(cs, ", ") + ")"
		}
		v.Rows = append(v.Rows, repStormRow{Proxy: repPeerLabel(t.Proxy), Clients: repInt(int64(t.Clients)), Served: repInt(int64(t.Served)),
			StreamErrors: errs, Resets: repInt(int64(t.Resets)), Silent: repInt(int64(t.SilentCloses)),
			Timeouts: repInt(int64(t.Timeouts)), Other: repInt(int64(t.Other)),
			BackendMax: repInt(int64(t.BackendMaxStreams)), BackendResets: repInt(int64(t.BackendResets))})
		share := func(n int) string {
			if t.Clients == 0 {
				return "—"
			}
			return repPct(float64(n) / float64(t.Clients))
		}
		sr := repStormShareRow{Proxy: repPeerLabel(t.Proxy), Served: share(t.Served), StreamErrors: share(t.StreamErrors),
			Resets: share(t.Resets), Silent: share(t.SilentCloses), Timeouts: share(t.Timeouts), ServedVsHAProxy: "—"}
		if h != nil {
			sr.ServedVsHAProxy = repRatio(float64(t.Served), float64(h.Served))
		}
		v.Shares = append(v.Shares, sr)
		if t.Proxy != "direct" && t.BackendMaxStreams > s.Settings.Capacity {
			v.NoneExceeded = false
			exceeded = append(exceeded, fmt.Sprintf("%s (%d)", repPeerLabel(t.Proxy), t.BackendMaxStreams))
		}
	}
	v.Exceeded = strings.Join(exceeded, ", ")
	v.NoProxy = "Neither proxy"
	if proxies > 2 {
		v.NoProxy = "No proxy"
	}
	if a := v.GuardAdaptive; a != nil {
		v.AdaptiveInternalErrors = a.Conditions["internal-server-error"]
		v.AdaptiveClean = a.Resets == 0 && a.SilentCloses == 0 && a.Served+a.StreamErrors == a.Clients && a.Unclean == 0 &&
			v.AdaptiveInternalErrors == 0
		v.AdaptiveConditions = repConditions(a.Conditions)
		if x, ok := a.SlowestSeconds[outStreamError]; ok {
			v.AdaptiveSlowestRefusal = repNum(x, 2) + " s"
		}
		if g := v.Guard; g != nil && g.Served > 0 {
			v.AdaptiveServedVsGuard = repRatio(float64(a.Served), float64(g.Served))
		}
	}
	if n := v.HAProxyNoMaxconn; n != nil {
		v.NoMaxconnFailed = n.Resets + n.SilentCloses
		if n.Clients > 0 {
			v.NoMaxconnFailedShare = repPct(float64(v.NoMaxconnFailed) / float64(n.Clients))
		}
		v.NoMaxconnTerminations = repTerminations(n.HAProxyTermination)
		if h != nil && h.Served > 0 {
			v.NoMaxconnServedVsHAProxy = repRatio(float64(n.Served), float64(h.Served))
		}
	}
	if g := v.Guard; g != nil {
		v.GuardClean = g.Resets == 0 && g.SilentCloses == 0 && g.Served+g.StreamErrors == g.Clients && g.Unclean == 0
		v.GuardUnclean = g.Unclean
		v.GuardConditions = repConditions(g.Conditions)
		if x, ok := g.SlowestSeconds[outStreamError]; ok {
			v.GuardSlowestRefusal = repNum(x, 2) + " s"
		}
		if h != nil && h.Served > 0 {
			v.GuardServedVsHAProxy = repRatio(float64(g.Served), float64(h.Served))
		}
	}
	if h != nil {
		v.HAProxySilent = repInt(int64(h.SilentCloses))
		if h.Clients > 0 {
			v.HAProxySilentShare = repPct(float64(h.SilentCloses) / float64(h.Clients))
		}
		v.HAProxyTerminations = repTerminations(h.HAProxyTermination)
	}
	if d := v.Direct; d != nil {
		v.DirectResets = repInt(int64(d.Resets))
	}
	return v
}

// repConditions lists stream error conditions as elements: "`<a/>`, `<b/>`".
func repConditions(m map[string]int) string {
	var cs []string
	for _, c := range slices.Sorted(maps.Keys(m)) {
		cs = append(cs, "`<"+c+"/>`")
	}
	return strings.Join(cs, ", ")
}

// repTerminations lists HAProxy's termination states with their counts.
func repTerminations(m map[string]int) string {
	var ts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		ts = append(ts, fmt.Sprintf("`%s` %s", k, repInt(int64(m[k]))))
	}
	return strings.Join(ts, ", ")
}

// ---- TLS ----

type repTLSView struct {
	Settings      tlsSettings
	Rows          []repTLSRow
	Less, Total   int
	More          string // the scenarios where Guard does the opposite of LessOrMore
	Opposite      string // the opposite of LessOrMore
	LessOrMore    string // "less" when Guard spends less CPU in most scenarios
	CPUCount      int    // in how many scenarios it does what LessOrMore says
	AllResumed    bool
	NotResumed    string
	Errors        string
	RSAFull       string // Guard/HAProxy CPU per full RSA handshake, range
	ECDSAFull     string
	RSAWorse      bool
	RSAKnown      bool
	HasHAProxy    bool
	FasterRate    int
	RatesUnstable bool
}

type repTLSRow struct {
	Cert, Version, Kind, GuardRate, HAProxyRate, RateRatio, GuardCPU, HAProxyCPU, CPURatio string
}

var repCertNames = map[string]string{"ecdsa": "ECDSA P-256", "rsa": "RSA 2048"}
var repVersionNames = map[string]string{"tls1.3": "1.3", "tls1.2": "1.2"}

func newRepTLSView(t reportTLS) *repTLSView {
	hs := t.Handshakes
	v := &repTLSView{Settings: hs.Settings, AllResumed: true}
	type key struct{ cert, version, kind string }
	var keys []key
	by := map[key]map[string]tlsRun{}
	for _, r := range hs.Runs {
		k := key{r.Cert, r.Version, r.Kind}
		if by[k] == nil {
			by[k] = map[string]tlsRun{}
			keys = append(keys, k)
		}
		by[k][r.Proxy] = r
		if r.Kind == "resumed" && r.ResumedFraction < 1 {
			v.AllResumed = false
			v.NotResumed += fmt.Sprintf("%s %s %s: %s of %s resumed; ", repPeerLabel(r.Proxy), repCertNames[r.Cert], repVersionNames[r.Version],
				repInt(int64(r.Resumed)), repInt(int64(r.Handshakes)))
		}
		if r.Errors > 0 {
			v.Errors += fmt.Sprintf("%s %s %s %s: %d errors; ", repPeerLabel(r.Proxy), repCertNames[r.Cert], repVersionNames[r.Version], r.Kind, r.Errors)
		}
	}
	v.NotResumed = strings.TrimSuffix(v.NotResumed, "; ")
	v.Errors = strings.TrimSuffix(v.Errors, "; ")
	var more, less []string
	var rsaFull, ecdsaFull []float64
	for _, k := range keys {
		g, hasG := by[k]["guard"]
		h, hasH := by[k]["haproxy"]
		row := repTLSRow{Cert: repOr(repCertNames[k.cert], k.cert), Version: repOr(repVersionNames[k.version], k.version), Kind: k.kind,
			GuardRate: "—", HAProxyRate: "—", RateRatio: "—", GuardCPU: "—", HAProxyCPU: "—", CPURatio: "—"}
		if hasG {
			row.GuardRate, row.GuardCPU = repNum(g.PerSecond, 0), repNum(g.ProxyCPUMicros, 0)
		}
		if hasH {
			v.HasHAProxy = true
			row.HAProxyRate, row.HAProxyCPU = repNum(h.PerSecond, 0), repNum(h.ProxyCPUMicros, 0)
		}
		if hasG && hasH {
			row.RateRatio, row.CPURatio = repRatio(g.PerSecond, h.PerSecond), repRatio(g.ProxyCPUMicros, h.ProxyCPUMicros)
			v.Total++
			if g.PerSecond > h.PerSecond {
				v.FasterRate++
			}
			c := g.ProxyCPUMicros / h.ProxyCPUMicros
			scenario := fmt.Sprintf("%s TLS %s %s (%s×)", row.Cert, row.Version, k.kind, repNum(c, 2))
			if c < 1 {
				v.Less++
				less = append(less, scenario)
			} else {
				more = append(more, scenario)
			}
			if k.kind == "full" {
				switch k.cert {
				case "rsa":
					rsaFull = append(rsaFull, c)
				case "ecdsa":
					ecdsaFull = append(ecdsaFull, c)
				}
			}
		}
		v.Rows = append(v.Rows, row)
	}
	v.LessOrMore, v.CPUCount, v.Opposite, v.More = "less", v.Less, "more", strings.Join(more, ", ")
	if v.Less*2 < v.Total {
		v.LessOrMore, v.CPUCount, v.Opposite, v.More = "more", v.Total-v.Less, "less", strings.Join(less, ", ")
	}
	if len(rsaFull) > 0 && len(ecdsaFull) > 0 {
		v.RSAKnown = true
		v.RSAFull, v.ECDSAFull = repRatioRange(rsaFull), repRatioRange(ecdsaFull)
		v.RSAWorse = slices.Min(rsaFull) > slices.Max(ecdsaFull)
	}
	return v
}

// repCmp names how ratio x compares with 1 as the page prints it (two
// decimals): below, equal ("1.00") or above.
func repCmp(x float64, below, equal, above string) string {
	switch {
	case repNum(x, 2) == "1.00":
		return equal
	case x < 1:
		return below
	default:
		return above
	}
}

// repRatioRange is "1.63–1.98×" (or "1.63×" for one value).
func repRatioRange(xs []float64) string {
	lo, hi := slices.Min(xs), slices.Max(xs)
	if repNum(lo, 2) == repNum(hi, 2) {
		return repNum(lo, 2) + "×"
	}
	return repNum(lo, 2) + "–" + repNum(hi, 2) + "×"
}

type repIdleTLSView struct {
	Streams, Cert              string
	Rows                       []repIdleTLSRow
	GuardVsHAProxy             string
	GuardLess, Known           bool
	Word                       string
	GuardBytes, HAProxyBytes   string
	GuardCPUOpen, HAProxyCPUOp string
}

type repIdleTLSRow struct {
	Proxy, Streams, Baseline, RSS, PerStream, VsHAProxy, CPUOpen string
}

func newRepIdleTLSView(t reportTLS) *repIdleTLSView {
	is := t.IdleStreams
	v := &repIdleTLSView{Cert: repOr(repCertNames[is.Cert], is.Cert)}
	h := math.NaN()
	for _, r := range is.Results {
		if r.Proxy == "haproxy" {
			h = r.BytesPerStream
		}
	}
	for _, r := range is.Results {
		v.Streams = repInt(int64(r.Streams))
		v.Rows = append(v.Rows, repIdleTLSRow{Proxy: repPeerLabel(r.Proxy), Streams: repInt(int64(r.Streams)), Baseline: repMiB(r.BaseRSS),
			RSS: repMiB(r.RSS), PerStream: repNum(r.BytesPerStream, 0), VsHAProxy: repRatio(r.BytesPerStream, h), CPUOpen: repNum(r.ProxyCPUMicros, 0)})
		switch r.Proxy {
		case "guard":
			v.GuardBytes = repNum(r.BytesPerStream, 0)
			if !math.IsNaN(h) && h > 0 {
				v.Known, v.GuardVsHAProxy, v.GuardLess = true, repNum(r.BytesPerStream/h, 2)+"×", r.BytesPerStream <= h
				v.Word = repCmp(r.BytesPerStream/h, "less", "about as much", "more")
			}
		case "haproxy":
			v.HAProxyBytes = repNum(r.BytesPerStream, 0)
		}
	}
	return v
}

// ---- latency ----

type repLatencyView struct {
	Settings      latencySettings
	Rows          []repLatencyRow
	Ratio         repLatencyRow
	HasRatio      bool
	Guard, HAP    *latResult
	Direct        *latResult
	AddedP50Guard string
	AddedP50HAP   string
	AddedP99Guard string
	AddedP99HAP   string
	GuardP50Lower bool
	GuardP99Lower bool
	CPURatio      string
	GuardLessCPU  bool
	GuardCPU      string
	HAPCPU        string
	HAPCPUVsRef   string
	WorstP99      string
	NegativeAdded bool // a proxy's added p99 (or p50) below zero: the direct tail was the worse
	Lost          string
}

type repLatencyRow struct {
	Peer, P50, P90, P99, P999, Max, AddedP50, AddedP99, CPU, Lost string
	Syscalls                                                      string // per 1,000 round trips, under strace
}

func newRepLatencyView(l reportLatency) *repLatencyView {
	v := &repLatencyView{Settings: l.Settings}
	var worst *latResult
	var lost []string
	for i := range l.Peers {
		p := &l.Peers[i]
		switch p.Peer {
		case "guard":
			v.Guard = p
		case "haproxy":
			v.HAP = p
		case "direct":
			v.Direct = p
		}
		if worst == nil || p.P99us > worst.P99us {
			worst = p
		}
		if p.Lost != 0 {
			lost = append(lost, fmt.Sprintf("%s %s", repPeerLabel(p.Peer), repInt(p.Lost)))
		}
	}
	v.Lost = strings.Join(lost, ", ")
	if worst != nil {
		v.WorstP99 = repPeerLabel(worst.Peer)
	}
	added := func(p *latResult, q string) float64 {
		if a, ok := l.Added[p.Peer][q]; ok {
			return a
		}
		if v.Direct == nil {
			return math.NaN()
		}
		if q == "p50_us" {
			return p.P50us - v.Direct.P50us
		}
		return p.P99us - v.Direct.P99us
	}
	for i := range l.Peers {
		p := &l.Peers[i]
		row := repLatencyRow{Peer: repPeerLabel(p.Peer), P50: fmtUs(p.P50us), P90: fmtUs(p.P90us), P99: fmtUs(p.P99us),
			P999: fmtUs(p.P999us), Max: fmtUs(p.Maxus), AddedP50: "—", AddedP99: "—", CPU: "—", Lost: repInt(p.Lost), Syscalls: "—"}
		if p.SyscallsPer1000RT > 0 {
			row.Syscalls = repNum(p.SyscallsPer1000RT, 0)
		}
		if p.Peer != "direct" {
			if added(p, "p50_us") < 0 || added(p, "p99_us") < 0 {
				v.NegativeAdded = true
			}
			row.AddedP50, row.AddedP99 = repSignedUs(added(p, "p50_us")), repSignedUs(added(p, "p99_us"))
			row.CPU = repNum(p.ProxyCPUmsPer1000RT, 0) + " ms"
		}
		v.Rows = append(v.Rows, row)
	}
	if g, h := v.Guard, v.HAP; g != nil && h != nil {
		v.HasRatio = true
		v.Ratio = repLatencyRow{Peer: "Guard / HAProxy", P50: repRatio(g.P50us, h.P50us), P90: repRatio(g.P90us, h.P90us),
			P99: repRatio(g.P99us, h.P99us), P999: repRatio(g.P999us, h.P999us), Max: repRatio(g.Maxus, h.Maxus),
			AddedP50: repSignedRatio(added(g, "p50_us"), added(h, "p50_us")), AddedP99: repSignedRatio(added(g, "p99_us"), added(h, "p99_us")),
			CPU: repRatio(g.ProxyCPUmsPer1000RT, h.ProxyCPUmsPer1000RT), Lost: ""}
		if g.SyscallsPer1000RT > 0 && h.SyscallsPer1000RT > 0 {
			v.Ratio.Syscalls = repRatio(g.SyscallsPer1000RT, h.SyscallsPer1000RT)
		}
		v.AddedP50Guard, v.AddedP50HAP = repSignedUs(added(g, "p50_us")), repSignedUs(added(h, "p50_us"))
		v.AddedP99Guard, v.AddedP99HAP = repSignedUs(added(g, "p99_us")), repSignedUs(added(h, "p99_us"))
		// A proxy cannot take latency away: an added figure below zero is
		// the direct connection's own noise, and counts as nothing added.
		v.GuardP50Lower = max(added(g, "p50_us"), 0) <= max(added(h, "p50_us"), 0)
		v.GuardP99Lower = max(added(g, "p99_us"), 0) <= max(added(h, "p99_us"), 0)
		v.CPURatio = repNum(g.ProxyCPUmsPer1000RT/h.ProxyCPUmsPer1000RT, 2) + "×"
		v.GuardLessCPU = g.ProxyCPUmsPer1000RT <= h.ProxyCPUmsPer1000RT
	}
	if g := v.Guard; g != nil {
		v.GuardCPU = repNum(g.ProxyCPUmsPer1000RT, 0) + " ms"
	}
	if h := v.HAP; h != nil {
		v.HAPCPU = repNum(h.ProxyCPUmsPer1000RT, 0) + " ms"
		v.HAPCPUVsRef = repNum(h.ProxyCPUmsPer1000RT/refHAProxyCPUms1000RT, 1) + "×"
	}
	return v
}

// repSignedUs is "+194 µs" or "−25.8 ms".
func repSignedUs(x float64) string {
	if math.IsNaN(x) {
		return "—"
	}
	if x < 0 {
		return "−" + fmtUs(-x)
	}
	return "+" + fmtUs(x)
}

// repSignedRatio is x/y, or "—" when either is not above zero (a ratio of
// added latencies means nothing when one of them is negative: noise).
func repSignedRatio(x, y float64) string {
	if !(x > 0 && y > 0) {
		return "—"
	}
	return repNum(x/y, 2)
}

// ---- websocket ----

type repWebSocketView struct {
	Settings wsSettings
	Rows     []repWebSocketRow
	Ratio    repWebSocketRow
	HasRatio bool
	// The sentences: Guard's and HAProxy's figures, and which is the lower.
	GuardIdle, HAPIdle, IdleRatio string
	GuardLessRSS                  bool
	GuardCPU, HAPCPU, CPURatio    string
	GuardLessCPU                  bool
	AddedP50Guard, AddedP50HAP    string
	HAProxyConfig                 string
	Unanswered                    string
}

type repWebSocketRow struct {
	Peer, IdleRSS, CPU, ProsodyCPU, P50, P90, P99, Max, AddedP50, RoundTrips string
}

func newRepWebSocketView(w reportWebSocket) *repWebSocketView {
	v := &repWebSocketView{Settings: w.Settings, HAProxyConfig: w.HAProxy}
	idle := map[string]*wsIdleResult{}
	for i := range w.Idle {
		idle[w.Idle[i].Peer] = &w.Idle[i]
	}
	rt := map[string]*wsRTResult{}
	for i := range w.RoundTrip {
		rt[w.RoundTrip[i].Peer] = &w.RoundTrip[i]
	}
	direct := rt["direct"]
	added := func(r *wsRTResult) float64 {
		if direct == nil || r == nil {
			return math.NaN()
		}
		return r.P50us - direct.P50us
	}
	var unanswered []string
	for _, name := range []string{"direct", "haproxy", "guard"} {
		id, r := idle[name], rt[name]
		if id == nil && r == nil {
			continue
		}
		row := repWebSocketRow{Peer: repPeerLabel(name), IdleRSS: "—", CPU: "—", ProsodyCPU: "—", P50: "—", P90: "—", P99: "—", Max: "—", AddedP50: "—", RoundTrips: "—"}
		if id != nil && name != "direct" {
			row.IdleRSS = repKB(id.ProxyBytesPerStream)
		}
		if r != nil {
			row.P50, row.P90, row.P99, row.Max = fmtUs(r.P50us), fmtUs(r.P90us), fmtUs(r.P99us), fmtUs(r.Maxus)
			row.RoundTrips = repInt(r.Answered)
			row.ProsodyCPU = repNum(r.ProsodyCPUmsPer1000RT, 0) + " ms"
			if r.Answered != r.RoundTrips {
				row.RoundTrips += " of " + repInt(r.RoundTrips)
				unanswered = append(unanswered, fmt.Sprintf("%s %s", repPeerLabel(name), repInt(r.RoundTrips-r.Answered)))
			}
			if name != "direct" {
				row.CPU = repNum(r.ProxyCPUmsPer1000RT, 1) + " ms"
				row.AddedP50 = repSignedUs(added(r))
			}
		}
		v.Rows = append(v.Rows, row)
	}
	v.Unanswered = strings.Join(unanswered, ", ")
	gi, hi, gr, hr := idle["guard"], idle["haproxy"], rt["guard"], rt["haproxy"]
	if gi != nil && hi != nil && gr != nil && hr != nil {
		v.HasRatio = true
		v.Ratio = repWebSocketRow{Peer: "Guard / HAProxy", IdleRSS: repRatio(gi.ProxyBytesPerStream, hi.ProxyBytesPerStream),
			CPU: repRatio(gr.ProxyCPUmsPer1000RT, hr.ProxyCPUmsPer1000RT), ProsodyCPU: repRatio(gr.ProsodyCPUmsPer1000RT, hr.ProsodyCPUmsPer1000RT), P50: repRatio(gr.P50us, hr.P50us),
			P90: repRatio(gr.P90us, hr.P90us), P99: repRatio(gr.P99us, hr.P99us), Max: repRatio(gr.Maxus, hr.Maxus),
			AddedP50: repSignedRatio(added(gr), added(hr))}
		v.GuardIdle, v.HAPIdle = repKB(gi.ProxyBytesPerStream), repKB(hi.ProxyBytesPerStream)
		v.IdleRatio = repRatio(gi.ProxyBytesPerStream, hi.ProxyBytesPerStream) + "×"
		v.GuardLessRSS = gi.ProxyBytesPerStream <= hi.ProxyBytesPerStream
		v.GuardCPU, v.HAPCPU = repNum(gr.ProxyCPUmsPer1000RT, 1)+" ms", repNum(hr.ProxyCPUmsPer1000RT, 1)+" ms"
		v.CPURatio = repRatio(gr.ProxyCPUmsPer1000RT, hr.ProxyCPUmsPer1000RT) + "×"
		v.GuardLessCPU = gr.ProxyCPUmsPer1000RT <= hr.ProxyCPUmsPer1000RT
		v.AddedP50Guard, v.AddedP50HAP = repSignedUs(added(gr)), repSignedUs(added(hr))
	}
	return v
}

// ---- goals ----

type repGoalRow struct {
	Goal, Target, Measured, Status string
	Known, Met                     bool
}

func buildRepGoals(r *repPage) []repGoalRow {
	var gs []repGoalRow
	add := func(goal, target string, known bool, measured string, met bool) {
		g := repGoalRow{Goal: goal, Target: target, Known: known, Met: known && met}
		switch {
		case !known:
			g.Measured, g.Status = "not measured in this run", "—"
		case met:
			g.Measured, g.Status = measured, "**met**"
		default:
			g.Measured, g.Status = measured, "not met"
		}
		gs = append(gs, g)
	}
	idle := r.Idle
	var guardIdle, hapIdle *reportIdlePeer
	if idle != nil {
		guardIdle, hapIdle = idle.Guard, idle.HAProxy
	}
	if guardIdle != nil {
		add("idle RSS per stream (now)", "≤ nginx, "+repKB(refNginxIdleBytes), true,
			repKB(guardIdle.BytesPerStream), guardIdle.BytesPerStream <= refNginxIdleBytes)
	} else {
		add("idle RSS per stream (now)", "≤ nginx, "+repKB(refNginxIdleBytes), false, "", false)
	}
	if guardIdle != nil && hapIdle != nil {
		add("idle RSS per stream (in the end)", "≤ HAProxy (this run: "+repKB(hapIdle.BytesPerStream)+")", true,
			repKB(guardIdle.BytesPerStream)+" ("+repNum(guardIdle.BytesPerStream/hapIdle.BytesPerStream, 2)+"×)",
			guardIdle.BytesPerStream <= hapIdle.BytesPerStream)
	} else {
		add("idle RSS per stream (in the end)", "≤ HAProxy", false, "", false)
	}
	thr := false
	if t := r.Throughput; t != nil {
		for _, s := range t.Sizes {
			if s.HasGuard && s.HasHAProxy {
				thr = true
				add("framed relay throughput, "+s.Size+" stanzas", "≥ 1.0× HAProxy", true, s.GuardVsHAProxy, s.GuardFaster)
			}
		}
	}
	if !thr {
		add("framed relay throughput", "≥ 1.0× HAProxy", false, "", false)
	}
	if m := r.Micro; m != nil && m.FramingKnown {
		add("cost of framing (in-process relay, against Guard raw)", "< "+repPct(repGoalFramingCost)+" of throughput", true, m.FramingCost, m.FramingMet)
	} else {
		add("cost of framing (in-process relay, against Guard raw)", "< "+repPct(repGoalFramingCost)+" of throughput", false, "", false)
	}
	if l := r.Latency; l != nil && l.HasRatio {
		add("added p50 latency (Prosody echo)", "≤ HAProxy (this run: "+l.AddedP50HAP+")", true, l.AddedP50Guard, l.GuardP50Lower)
		add("added p99 latency (Prosody echo)", "≤ HAProxy (this run: "+l.AddedP99HAP+")", true, l.AddedP99Guard, l.GuardP99Lower)
		add("proxy CPU per 1,000 round trips", "≤ HAProxy (this run: "+l.HAPCPU+")", true, l.GuardCPU+" ("+l.CPURatio+")", l.GuardLessCPU)
	} else {
		for _, g := range []string{"added p50 latency (Prosody echo)", "added p99 latency (Prosody echo)", "proxy CPU per 1,000 round trips"} {
			add(g, "≤ HAProxy", false, "", false)
		}
	}
	if s := r.Storm; s != nil && s.Guard != nil {
		// Guard with max_streams and, where measured, without (adaptive
		// admission), in both storms.
		resets, silent := 0, 0
		for _, v := range []*repStormView{s, r.StormSlow} {
			if v == nil {
				continue
			}
			for _, t := range []*stormTally{v.Guard, v.GuardAdaptive} {
				if t != nil {
					resets, silent = resets+t.Resets, silent+t.SilentCloses
				}
			}
		}
		add("overload storm: resets and silent closes seen by Guard's clients", "0 and 0", true,
			fmt.Sprintf("%s and %s", repInt(int64(resets)), repInt(int64(silent))), resets == 0 && silent == 0)
	} else {
		add("overload storm: resets and silent closes seen by Guard's clients", "0 and 0", false, "", false)
	}
	return gs
}

// ---- formatting ----

var repFuncs = template.FuncMap{
	"join": strings.Join,
	"n":    func(x int) string { return repInt(int64(x)) },
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
}

// repNum formats x with prec decimals and thousands separators; "—" for NaN.
func repNum(x float64, prec int) string {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return "—"
	}
	s := strconv.FormatFloat(x, 'f', prec, 64)
	if s == "-0" || strings.HasPrefix(s, "-0.") && strings.Trim(s[1:], "0.") == "" {
		s = s[1:]
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if hasFrac {
		out += "." + frac
	}
	if neg {
		out = "−" + out
	}
	return out
}

func repInt(n int64) string { return repNum(float64(n), 0) }

// repRatio is a/b with two decimals, "—" when either is missing or b is 0.
func repRatio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return repNum(a/b, 2)
}

func repPct(x float64) string {
	if math.IsNaN(x) {
		return "—"
	}
	return fmt.Sprintf("%.0f%%", x*100)
}

// repKB is bytes in kilobytes (1000), as the figures are quoted.
func repKB(b float64) string {
	if math.IsNaN(b) {
		return "—"
	}
	return fmt.Sprintf("%.1f KB", b/1000)
}

func repMiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func repGiB(b int64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }

func repOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ---- recording ----

// TestRecordMachine writes results/machine.json: the machine, the versions
// of what is measured, and the load average when `make bench` starts. Only
// with GUARD_BENCH_RECORD=1 (make bench sets it).
func TestRecordMachine(t *testing.T) {
	if os.Getenv("GUARD_BENCH_RECORD") != "1" {
		t.Skip("GUARD_BENCH_RECORD=1 records results/machine.json (make bench)")
	}
	m := recordRepMachine()
	writeRepJSON(t, "machine.json", m)
}

func recordRepMachine() reportMachine {
	m := reportMachine{
		Date:     time.Now().UTC().Format(time.RFC3339),
		Commit:   repGitCommit(),
		CPUModel: "unknown",
		CPUs:     runtime.NumCPU(),
		Kernel:   repReadTrim("/proc/sys/kernel/osrelease"),
		Debian:   repReadTrim("/etc/debian_version"),
		Go:       runtime.Version(),
		HAProxy:  "not installed",
		Prosody:  "not installed",
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.Join(strings.Fields(v), " ")
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				kB, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				m.MemoryBytes = kB << 10
			}
		}
	}
	if out, err := exec.Command("haproxy", "-v").Output(); err == nil {
		first, _, _ := strings.Cut(string(out), "\n")
		m.HAProxy = strings.TrimSpace(first)
	}
	if out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "prosody").Output(); err == nil && len(out) > 0 {
		m.Prosody = strings.TrimSpace(string(out))
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil {
		m.OpenFiles = lim.Cur
	}
	m.LoadStart = repLoadAvg()
	return m
}

func repReadTrim(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(data))
}

// repGitCommit is the short commit, with "-dirty" when the tree has changes.
func repGitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "-dirty"
	}
	return c
}

// repLoadAvg is the 1, 5 and 15 minute load averages; nil if unknown.
func repLoadAvg() []float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return nil
	}
	var l []float64
	for _, s := range f[:3] {
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil
		}
		l = append(l, x)
	}
	return l
}

// TestRecordMicro reads results/micro.txt (the micro benchmarks' output,
// which make bench tees there) and writes the median of every benchmark
// and unit to results/micro.json. Only with GUARD_BENCH_RECORD=1.
func TestRecordMicro(t *testing.T) {
	if os.Getenv("GUARD_BENCH_RECORD") != "1" {
		t.Skip("GUARD_BENCH_RECORD=1 records results/micro.json from results/micro.txt (make bench)")
	}
	f, err := os.Open(filepath.Join(reportResults, "micro.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := parseRepBenchOutput(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Benchmarks) == 0 {
		t.Fatal("results/micro.txt holds no benchmark line")
	}
	m.Date = time.Now().UTC().Format(time.RFC3339)
	writeRepJSON(t, "micro.json", m)
}

func writeRepJSON(t *testing.T, name string, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(reportResults, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(reportResults, name)
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote bench/%s", path)
}

// ---- the page ----

// repRunLine is the line of the page that holds the run's start, its
// end and the load average at the end; TestReport reads the end back from
// the committed page, since machine.json records only the start.
var repRunLine = regexp.MustCompile(`(?m)^- Run: started (\S+), (?:ended (\S+) \([^)]*\)|end not recorded), commit .*; load average \(1, 5, 15 min\) at the start [^;]*; at the end (not recorded|[0-9.]+ / [0-9.]+ / [0-9.]+)\.$`)

// repRunEndFromDoc returns the run's start as the page states it, and its end
// and end-of-run load average (zero and nil when not recorded).
func repRunEndFromDoc(doc []byte) (start string, o reportOptions) {
	m := repRunLine.FindSubmatch(doc)
	if m == nil {
		return "", o
	}
	start = string(m[1])
	if len(m[2]) > 0 {
		o.End, _ = time.Parse(time.RFC3339, string(m[2]))
	}
	if string(m[3]) != "not recorded" {
		for _, s := range strings.Split(string(m[3]), " / ") {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return start, reportOptions{End: o.End}
			}
			o.LoadEnd = append(o.LoadEnd, x)
		}
	}
	return start, o
}

// TestReport keeps docs/performance.md what bench/results render to. With
// GUARD_BENCH_REPORT=1 it writes the page (the last step of make bench,
// which also records the load average at the end of the run); otherwise it
// fails if the committed page differs from the committed results.
func TestReport(t *testing.T) {
	old, err := os.ReadFile(reportDoc)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	oldStart, oldEnd := repRunEndFromDoc(old)
	var m reportMachine
	if _, err := readReportFile(reportResults, "machine.json", &m); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("GUARD_BENCH_REPORT") == "1" {
		// The run ends now (make bench renders the page last), unless the
		// page already describes this run (the same start) and is only
		// rendered again.
		end := reportOptions{End: time.Now(), LoadEnd: repLoadAvg()}
		if oldStart != "" && oldStart == m.Date && !oldEnd.End.IsZero() {
			end = oldEnd
		}
		out, err := renderReportOptions(reportResults, end)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(reportDoc, out, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote docs/performance.md from bench/results")
		return
	}
	if oldStart != m.Date {
		oldEnd = reportOptions{}
	}
	out, err := renderReportOptions(reportResults, oldEnd)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, old) {
		t.Fatalf("docs/performance.md is not what bench/results render to (%s): it is generated; run `make bench`, or to re-render the committed results `GUARD_BENCH_REPORT=1 go test -run TestReport ./bench`, and edit bench/performance.md.tmpl rather than the page",
			repFirstDiff(old, out))
	}
}

// repFirstDiff describes the first line where got and want differ.
func repFirstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b || i >= len(g) || i >= len(w) {
			return fmt.Sprintf("line %d is %q, the results render %q", i+1, a, b)
		}
	}
	return "no line differs"
}

// TestRenderReport renders the fixture under testdata/report, where every
// results file is present, and checks that key figures and ratios appear.
func TestRenderReport(t *testing.T) {
	end := time.Date(2026, 11, 25, 12, 9, 30, 0, time.UTC)
	out, err := renderReportOptions(filepath.Join("testdata", "report"), reportOptions{End: end, LoadEnd: []float64{1.5, 1.25, 1}})
	if err != nil {
		t.Fatal(err)
	}
	doc := string(out)
	for _, want := range []string{
		// machine.json
		"commit `abc1234-dirty`", "AMD EPYC Test", "Debian 12.11", "HAProxy version 2.6.12", "Prosody 0.12.3",
		"0.50 / 0.40 / 0.30", "at the end 1.50 / 1.25 / 1.00.", "ended 2026-11-25T12:09:30Z (9.5 min)",
		// micro.json: relay table with its ratios, framing cost, tokenizer
		"| throughput, realistic stanza mix one way (MB/s) | 1,300 | 600 | 450 | 0.75 | 0.35 | 0.46 |",
		"costs 25% of relay throughput", "not under the goal of 15%",
		"Guard framed adds 30.0 µs per round trip", "1.80 GB/s",
		"| proxy | RelayThroughput/guard-framed | 3 |",
		// throughput.json
		"| Guard framed | 400 | 0.36 | 1.11 |", "Guard framed relays 1.11× HAProxy's throughput (faster), Guard raw 1.17× (faster)",
		"**1 KiB stanzas**", "HAProxy relays 0.33× of direct",
		// idle.json
		"11,325", "3,400", "3.33×", "| 9,000 |", "| 12.0 MiB | 1.20× |", "| 22.0 MiB | 1.10× |",
		"50,000 idle streams", "| Guard framed | 550.0 MiB |",
		// storm.json
		"| Guard | 2,000 | 1,200 | 800 (`resource-constraint` 800) | 0 | 0 |",
		"HAProxy closed 1,100 clients without a word",
		// storm.json: the peers not told C
		"| Guard adaptive | 2,000 | 1,150 | 850 (`resource-constraint` 850) | 0 | 0 | 0 | 0 | 200 | 37 |",
		"| HAProxy no maxconn | 2,000 | 230 | 0 | 70 | 1,700 | 0 | 0 | 200 | 1,770 |",
		"Not told C: Guard adaptive is Guard without `max_streams`",
		"the backend reset 37 of Guard's connections while Guard\n  found the cap, and not one of those resets reached a client",
		"1,150 served, 850 refused with a well-formed `<resource-constraint/>` stream error (the slowest refusal after 1.20 s); 0.96× as many served as by Guard with a fixed `max_streams = 200`",
		"the backend reset 1,770 of HAProxy's connections, and HAProxy\n  passed that on to its clients: 70 were reset and 1,700 closed without a word (88% of its clients); 230 served (0.26× as many as by HAProxy with `maxconn 200`). Guard adaptive kept the 37 backend resets its learning cost between itself and the backend.",
		"HAProxy no maxconn's termination states: `--` 230, `SD` 1,770.",
		"- No proxy let the backend exceed C = 200 streams.",
		// storm-slow.json
		"with each stream held 1s by the backend", "HAProxy served 610 and closed 1,390 clients without a word",
		"600 served, 1,400 refused with a well-formed",
		"the backend reset 25 of Guard's connections", "580 served, 1,420 refused",
		"Guard adaptive kept the 25 backend resets its learning cost",
		// tls.json
		"Guard spends less CPU per handshake than HAProxy in 1 of 2 scenarios",
		"| RSA 2048 | 1.3 | full | 250 | 330 | 0.76 | 1,500 | 750 | 2.00 |",
		"22,500", "1.25×",
		// latency.json
		"| Guard | 480 µs |", "| Guard / HAProxy | 1.12 |", "2.00×",
		// websocket.json
		"| Guard | 8.0 KB | 60.0 ms | 150 ms | 400 µs |", "| Guard / HAProxy | 0.80 | 1.20 | 0.75 | 1.14 |",
		"Guard holds an idle WebSocket stream in 8.0 KB, HAProxy in 10.0 KB (0.80×, the less)",
		"**CPU per round trip: Guard spends 1.20× HAProxy's**", "2,000 idle streams",
		// goals, computed
		"| idle RSS per stream (now) | ≤ nginx, 10.2 KB | 11.3 KB | not met |",
		"| overload storm: resets and silent closes seen by Guard's clients | 0 and 0 | 0 and 0 | **met** |",
		"| framed relay throughput, 16 KiB stanzas | ≥ 1.0× HAProxy | 1.11× | **met** |",
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if strings.Contains(doc, "not measured in this run (bench/results/") {
		t.Errorf("a section says not measured although every fixture file is present")
	}
	if t.Failed() {
		t.Logf("rendered:\n%s", doc)
	}

	// The run line round-trips through the page.
	start, o := repRunEndFromDoc(out)
	if start != "2026-11-25T12:00:00Z" || !o.End.Equal(end) || !slices.Equal(o.LoadEnd, []float64{1.5, 1.25, 1}) {
		t.Errorf("run line read back as %q %v %v", start, o.End, o.LoadEnd)
	}

	// Without any results file, every section says so in one line.
	empty, err := renderReport(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"machine", "micro", "throughput", "idle", "storm", "storm-slow", "tls", "latency", "websocket"} {
		if !strings.Contains(strings.ToLower(string(empty)), "not measured in this run (bench/results/"+f+".json absent)") {
			t.Errorf("empty results: no \"not measured\" line for %s.json", f)
		}
	}
}

// TestRenderStormPeers renders storms without the peers not told C (results
// written before they were measured) and with a Guard adaptive whose clients
// saw resets: the first must read as before, the second must say so.
func TestRenderStormPeers(t *testing.T) {
	var st reportStorm
	if _, err := readReportFile(filepath.Join("testdata", "report"), "storm.json", &st); err != nil {
		t.Fatal(err)
	}
	write := func(totals []stormTally) string {
		dir := t.TempDir()
		s := st
		s.Totals = totals
		data, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "storm.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := renderReport(dir)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	var old, broken []stormTally
	for _, x := range st.Totals {
		switch x.Proxy {
		case "guard-adaptive":
			x.Resets, x.Served = 3, x.Served-5
			x.Conditions = map[string]int{"resource-constraint": x.StreamErrors, "internal-server-error": 2}
			x.StreamErrors += 2
			broken = append(broken, x)
		case "haproxy-nomaxconn":
			broken = append(broken, x)
		default:
			old = append(old, x)
			broken = append(broken, x)
		}
	}
	doc := write(old)
	for _, no := range []string{"Guard adaptive", "no maxconn", "Not told C"} {
		if strings.Contains(doc, no) {
			t.Errorf("results without the peers not told C: the page mentions %q", no)
		}
	}
	if !strings.Contains(doc, "- Neither proxy let the backend exceed C = 200 streams.") {
		t.Errorf("results with two proxies: no \"Neither proxy\" line")
	}
	doc = write(broken)
	if want := "**Guard adaptive's clients saw 3 resets, 0 silent closes and 2 `<internal-server-error/>`**"; !strings.Contains(doc, want) {
		t.Errorf("Guard adaptive with resets: the page lacks %q", want)
	}
	if strings.Contains(doc, "kept the 37 backend resets") {
		t.Errorf("Guard adaptive with resets: the page still says it kept the backend's resets from its clients")
	}
	if g := buildRepGoalsFor(t, broken); !strings.Contains(g, "| 3 and 0 | not met |") {
		t.Errorf("Guard adaptive with resets: the storm goal reads %q", g)
	}
}

// buildRepGoalsFor returns the storm goal's row for a storm of totals.
func buildRepGoalsFor(t *testing.T, totals []stormTally) string {
	v := newRepStormView(reportStorm{Settings: stormSettings{Capacity: 200}, Totals: totals})
	for _, g := range buildRepGoals(&repPage{Storm: v}) {
		if strings.HasPrefix(g.Goal, "overload storm") {
			return fmt.Sprintf("| %s | %s | %s | %s |", g.Goal, g.Target, g.Measured, g.Status)
		}
	}
	t.Fatal("no storm goal")
	return ""
}

// TestRenderMicroParse checks the reading of go test -bench output.
func TestRenderMicroParse(t *testing.T) {
	in := `# command: go test -run '^$' -bench . -count 3 ./proxy
goos: linux
pkg: github.com/guard-xmpp/guard/proxy
cpu: Test CPU
BenchmarkRelayThroughput/guard-raw-2   	   27810	     43311 ns/op	 605.07 MB/s	       0 B/op	       0 allocs/op
BenchmarkRelayThroughput/guard-raw-2   	   28876	     40438 ns/op	 648.06 MB/s	       2 B/op	       0 allocs/op
BenchmarkRelayThroughput/guard-raw-2   	   26355	     43328 ns/op	 604.83 MB/s	       1 B/op	       0 allocs/op
BenchmarkIdle-2
    bench_test.go:10: a log line
BenchmarkIdle-2   	       1	 900000000 ns/op	     11325 B/stream
BenchmarkIdle-2   	       1	 800000000 ns/op	     11000 B/stream
PASS
pkg: github.com/guard-xmpp/guard/xmpp
BenchmarkParseHeader-2      	  960601	      1284 ns/op	     320 B/op	      21 allocs/op
ok  	github.com/guard-xmpp/guard/xmpp	29.028s
`
	m, err := parseRepBenchOutput(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if m.Command != "go test -run '^$' -bench . -count 3 ./proxy" || m.CPU != "Test CPU" {
		t.Errorf("command %q, cpu %q", m.Command, m.CPU)
	}
	if len(m.Benchmarks) != 3 {
		t.Fatalf("%d benchmarks, want 3: %+v", len(m.Benchmarks), m.Benchmarks)
	}
	b := m.Benchmarks[0]
	if b.Name != "BenchmarkRelayThroughput/guard-raw" || b.Package != "github.com/guard-xmpp/guard/proxy" || b.Runs != 3 {
		t.Errorf("first: %+v", b)
	}
	if b.Median["ns/op"] != 43311 || b.Median["MB/s"] != 605.07 || b.Median["B/op"] != 1 || b.Iterations != 27810 {
		t.Errorf("medians %v, iterations %d", b.Median, b.Iterations)
	}
	if b.Min["MB/s"] != 604.83 || b.Max["MB/s"] != 648.06 {
		t.Errorf("min %v max %v", b.Min, b.Max)
	}
	if i := m.Benchmarks[1]; i.Name != "BenchmarkIdle" || i.Runs != 2 || i.Median["B/stream"] != 11162.5 {
		t.Errorf("custom unit: %+v", i)
	}
	if p := m.Benchmarks[2]; p.Name != "BenchmarkParseHeader" || p.Package != "github.com/guard-xmpp/guard/xmpp" || p.Median["allocs/op"] != 21 {
		t.Errorf("second package: %+v", p)
	}
	if got := repMedian([]float64{3, 1, 2, 10}); got != 2.5 {
		t.Errorf("median of an even count: %v", got)
	}
	for x, want := range map[float64]string{1234567.891: "1,234,568", 999: "999", -1500: "−1,500", 0.004: "0"} {
		if got := repNum(x, 0); got != want {
			t.Errorf("num(%v) = %q, want %q", x, got, want)
		}
	}
}
