package main

import (
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// The chart of docs/BENCHMARKS.md, drawn as plain SVG (no plotting
// dependency): throughput and latency beside their baselines, retry
// lateness against its goal, and where the CPU went in each phase.

const (
	chartW, chartH = 1000, 1000
	panelW, panelH = 500, 350
	timelineH      = 250
)

var (
	colorService  = "#2b6cb0"
	colorBaseline = "#a0aec0"
	colorHealthy  = "#dd6b20"
	colorGoal     = "#c53030"
	cpuColors     = []string{"#2b6cb0", "#38a169", "#d69e2e", "#718096", "#edf2f7"}
	cpuLabels     = []string{"service", "postgres", "bench (receiver, load, baseline)", "other processes", "idle"}
)

type svg struct{ b strings.Builder }

func (s *svg) rect(x, y, w, h float64, fill string) {
	fmt.Fprintf(&s.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x, y, max(w, 0), max(h, 0), fill)
}

func (s *svg) line(x1, y1, x2, y2 float64, stroke string, dashed bool) {
	dash := ""
	if dashed {
		dash = ` stroke-dasharray="5,3"`
	}
	fmt.Fprintf(&s.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5"%s/>`+"\n", x1, y1, x2, y2, stroke, dash)
}

// text draws t; anchor is start, middle or end.
func (s *svg) text(x, y float64, size int, anchor, fill, t string) {
	fmt.Fprintf(&s.b, `<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" fill="%s">%s</text>`+"\n",
		x, y, size, anchor, fill, html.EscapeString(t))
}

func writeChart(path string, r *results) error {
	var s svg
	fmt.Fprintf(&s.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n",
		chartW, chartH, chartW, chartH)
	s.rect(0, 0, chartW, chartH, "#ffffff")
	kind := "full run"
	if r.Quick {
		kind = "quick run"
	}
	s.text(chartW/2, 22, 15, "middle", "#1a202c", fmt.Sprintf("BoohPay make bench (%s, %s): %d CPUs, PostgreSQL %s, fsync %s",
		kind, r.GeneratedAt.Format("2006-01-02"), r.Machine.CPUs, r.Machine.Postgres["server_version"], r.Machine.Postgres["fsync"]))
	throughputPanel(&s, 0, 30, r)
	latencyPanel(&s, panelW, 30, r)
	retryPanel(&s, 0, 30+panelH, r)
	cpuPanel(&s, panelW, 30+panelH, r)
	timelinePanel(&s, 0, 30+2*panelH, r)
	s.b.WriteString("</svg>\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(s.b.String()), 0o644)
}

// throughputPanel: each throughput as a share of its baseline, with the absolute numbers.
func throughputPanel(s *svg, x0, y0 float64, r *results) {
	s.text(x0+panelW/2, y0+20, 13, "middle", "#1a202c", "Throughput, as a share of its baseline (goal ≥ 50%)")
	type bar struct {
		label, value string
		share        float64
		color        string
	}
	var bars []bar
	if t := r.Throughput; t != nil {
		bars = append(bars,
			bar{"deliveries, BoohPay", fmt.Sprintf("%.0f/s", t.Service.PerSecond), t.PostRatio, colorService},
			bar{"River + signed POST", fmt.Sprintf("%.0f/s", t.PostBaseline.PerSecond), 1, colorBaseline})
	}
	if a := r.API; a != nil {
		bars = append(bars,
			bar{"create+simulate, HTTP", fmt.Sprintf("%.0f/s", a.Service.PairsPerSecond), a.Ratio, colorService},
			bar{"same SQL, pgbench", fmt.Sprintf("%.0f/s", a.PGBench.PairsPerSecond), 1, colorBaseline})
	}
	left, right, top := x0+170, x0+panelW-70, y0+50
	scale := 1.0
	for _, b := range bars {
		scale = max(scale, b.share)
	}
	rowH := 58.0
	for i, b := range bars {
		y := top + float64(i)*rowH + float64(i/2)*20
		s.text(left-8, y+22, 12, "end", "#1a202c", b.label)
		w := (right - left) * b.share / scale
		s.rect(left, y+6, w, 26, b.color)
		s.text(left+w+6, y+24, 12, "start", "#1a202c", fmt.Sprintf("%s (%.0f%%)", b.value, b.share*100))
	}
	if len(bars) > 0 {
		gx := left + (right-left)*0.5/scale
		bottom := top + float64(len(bars))*rowH + float64((len(bars)-1)/2)*20
		s.line(gx, top, gx, bottom, colorGoal, true)
		s.text(gx, bottom+14, 11, "middle", colorGoal, "goal 50%")
	}
}

// latencyPanel: commit-to-receipt percentiles, log scale, with the goals.
func latencyPanel(s *svg, x0, y0 float64, r *results) {
	s.text(x0+panelW/2, y0+20, 13, "middle", "#1a202c", "Commit → receipt latency at 200 events/s (ms, log scale)")
	type series struct {
		label string
		l     latency
		color string
	}
	var ss []series
	if l := r.Latency; l != nil {
		ss = append(ss, series{"BoohPay", l.Service.latency, colorService}, series{"River no-op job", l.Baseline.latency, colorBaseline})
	}
	if n := r.Noisy; n != nil {
		ss = append(ss, series{"healthy merchant beside a 10 s hang", n.Healthy.latency, colorHealthy})
	}
	left, right, top, bottom := x0+50, x0+panelW-20, y0+60, y0+panelH-50
	lo, hi := 0.1, 10.0
	for _, se := range ss {
		hi = max(hi, se.l.Max*1.5)
	}
	y := func(v float64) float64 {
		v = max(v, lo)
		return bottom - (bottom-top)*(math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}
	for v := lo; v <= hi; v *= 10 {
		s.line(left, y(v), right, y(v), "#e2e8f0", false)
		s.text(left-5, y(v)+4, 11, "end", "#4a5568", trimFloat(v))
	}
	groups := []string{"p50", "p90", "p99", "max"}
	gw := (right - left) / float64(len(groups))
	for gi, g := range groups {
		gx := left + float64(gi)*gw
		s.text(gx+gw/2, bottom+16, 12, "middle", "#1a202c", g)
		bw := (gw - 20) / float64(max(len(ss), 1))
		for si, se := range ss {
			v := []float64{se.l.P50, se.l.P90, se.l.P99, se.l.Max}[gi]
			bx := gx + 10 + float64(si)*bw
			s.rect(bx, y(v), bw-3, bottom-y(v), se.color)
			s.text(bx+(bw-3)/2, y(v)-3, 9, "middle", "#1a202c", trimFloat(round(v, 1)))
		}
		goal := map[string]float64{"p50": 10, "p99": 50}[g]
		if goal > 0 {
			s.line(gx+4, y(goal), gx+gw-4, y(goal), colorGoal, true)
			s.text(gx+gw-4, y(goal)-3, 9, "end", colorGoal, fmt.Sprintf("goal %.0f", goal))
		}
	}
	for i, se := range ss {
		lx := left + float64(i%2)*210
		ly := y0 + 36 + float64(i/2)*14
		s.rect(lx, ly-9, 10, 10, se.color)
		s.text(lx+14, ly, 11, "start", "#1a202c", se.label)
	}
}

// retryPanel: each retry's lateness against its due time, with the 500 ms goal.
func retryPanel(s *svg, x0, y0 float64, r *results) {
	s.text(x0+panelW/2, y0+20, 13, "middle", "#1a202c", "Retry lateness against 1, 2, 4, 8, 16 s (ms; goal ≤ 500)")
	rt := r.Retry
	if rt == nil {
		return
	}
	left, right, top, bottom := x0+60, x0+panelW-20, y0+50, y0+panelH-50
	hi := 600.0
	for _, st := range rt.Retries {
		hi = max(hi, st.MaxLateMS*1.15)
	}
	y := func(v float64) float64 { return bottom - (bottom-top)*max(v, 0)/hi }
	for v := 0.0; v <= hi; v += 100 {
		s.line(left, y(v), right, y(v), "#e2e8f0", false)
		s.text(left-5, y(v)+4, 11, "end", "#4a5568", fmt.Sprintf("%.0f", v))
	}
	gw := (right - left) / float64(max(len(rt.Retries), 1))
	for i, st := range rt.Retries {
		gx := left + float64(i)*gw
		s.text(gx+gw/2, bottom+16, 12, "middle", "#1a202c", fmt.Sprintf("retry %d (%.0f s)", i+1, st.DelayS))
		bw := (gw - 20) / 2
		for j, v := range []float64{st.P50LateMS, st.MaxLateMS} {
			bx := gx + 10 + float64(j)*bw
			s.rect(bx, y(v), bw-3, bottom-y(v), []string{colorBaseline, colorService}[j])
			s.text(bx+(bw-3)/2, y(v)-3, 9, "middle", "#1a202c", fmt.Sprintf("%.0f", v))
		}
	}
	s.line(left, y(500), right, y(500), colorGoal, true)
	s.rect(left, y0+30, 10, 10, colorBaseline)
	s.text(left+14, y0+39, 11, "start", "#1a202c", "median")
	s.rect(left+80, y0+30, 10, 10, colorService)
	s.text(left+94, y0+39, 11, "start", "#1a202c", fmt.Sprintf("max (%d deliveries)", rt.Deliveries))
}

// cpuPanel: where the CPU went in each measured phase, in cores.
func cpuPanel(s *svg, x0, y0 float64, r *results) {
	s.text(x0+panelW/2, y0+20, 13, "middle", "#1a202c", fmt.Sprintf("Where the CPU went (cores of %d)", r.Machine.CPUs))
	type phase struct {
		label string
		u     cpuUse
	}
	var ps []phase
	if t := r.Throughput; t != nil {
		ps = append(ps, phase{"1 BoohPay delivering", t.Service.CPU}, phase{"1 bare River", t.Baseline.CPU},
			phase{"1 River + signed POST", t.PostBaseline.CPU})
	}
	if l := r.Latency; l != nil {
		ps = append(ps, phase{"2 BoohPay at 200/s", l.Service.CPU}, phase{"2 River no-op at 200/s", l.Baseline.CPU})
	}
	if a := r.API; a != nil {
		ps = append(ps, phase{"3 HTTP create+simulate", a.Service.CPU}, phase{"3 pgbench", a.PGBench.CPU})
	}
	if n := r.Noisy; n != nil {
		ps = append(ps, phase{"5 beside a hanging merchant", n.Healthy.CPU})
	}
	left, right, top := x0+175, x0+panelW-20, y0+55
	cores := float64(max(r.Machine.CPUs, 1))
	rowH := 30.0
	for i, p := range ps {
		yy := top + float64(i)*rowH
		s.text(left-6, yy+15, 11, "end", "#1a202c", p.label)
		x := left
		for j, v := range []float64{p.u.Service, p.u.Postgres, p.u.Bench, p.u.Other, p.u.Idle} {
			w := (right - left) * v / cores
			s.rect(x, yy+2, w, rowH-8, cpuColors[j])
			x += w
		}
	}
	for c := 0.0; c <= cores; c++ {
		xx := left + (right-left)*c/cores
		s.text(xx, top+float64(len(ps))*rowH+10, 10, "middle", "#4a5568", fmt.Sprintf("%.0f", c))
	}
	ly := top + float64(len(ps))*rowH + 30
	for j, l := range cpuLabels {
		lx := x0 + 40 + float64(j%2)*230
		yy := ly + float64(j/2)*16
		s.rect(lx, yy-9, 10, 10, cpuColors[j])
		s.text(lx+14, yy, 11, "start", "#1a202c", l)
	}
}

// timelinePanel: p99 latency in each 5 s slice of the latency and
// noisy-neighbour runs, to show whether it holds or grows.
func timelinePanel(s *svg, x0, y0 float64, r *results) {
	s.text(x0+chartW/2, y0+20, 13, "middle", "#1a202c", "p99 commit → receipt in each 5 s of the run (ms, log scale)")
	type series struct {
		label string
		ss    []slice
		color string
	}
	var all []series
	if l := r.Latency; l != nil {
		all = append(all, series{"BoohPay at 200/s", l.Service.Timeline, colorService},
			series{"River no-op job", l.Baseline.Timeline, colorBaseline})
	}
	if n := r.Noisy; n != nil {
		all = append(all, series{"healthy merchant beside a 10 s hang", n.Healthy.Timeline, colorHealthy})
	}
	left, right, top, bottom := x0+60, x0+chartW-30, y0+50, y0+timelineH-30
	lo, hi, n := 1.0, 100.0, 1
	for _, se := range all {
		n = max(n, len(se.ss))
		for _, sl := range se.ss {
			hi = max(hi, sl.P99*1.5)
		}
	}
	y := func(v float64) float64 {
		v = max(v, lo)
		return bottom - (bottom-top)*(math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}
	for v := lo; v <= hi; v *= 10 {
		s.line(left, y(v), right, y(v), "#e2e8f0", false)
		s.text(left-5, y(v)+4, 11, "end", "#4a5568", trimFloat(v))
	}
	s.line(left, y(50), right, y(50), colorGoal, true)
	s.line(left, y(100), right, y(100), colorGoal, true)
	s.text(right, y0+20, 11, "end", colorGoal, "goals: p99 50 alone, 100 beside the hang")
	gw := (right - left) / float64(n)
	for k := range n {
		s.text(left+(float64(k)+0.5)*gw, bottom+14, 10, "middle", "#4a5568", fmt.Sprintf("%d–%d s", k*5, k*5+5))
	}
	for i, se := range all {
		bw := (gw - 8) / float64(len(all))
		for k, sl := range se.ss {
			bx := left + float64(k)*gw + 4 + float64(i)*bw
			s.rect(bx, y(sl.P99), bw-2, bottom-y(sl.P99), se.color)
		}
		lx := left + float64(i)*230
		s.rect(lx, y0+31, 10, 10, se.color)
		s.text(lx+14, y0+40, 11, "start", "#1a202c", se.label)
	}
}

func trimFloat(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}
