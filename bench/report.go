package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// results is bench/results/latest.json.
type results struct {
	GeneratedAt time.Time         `json:"generated_at"`
	Command     string            `json:"command"`
	Quick       bool              `json:"quick"`
	Commit      string            `json:"commit"`
	DurationS   float64           `json:"duration_s"`
	Machine     machine           `json:"machine"`
	Settings    settings          `json:"settings"`
	Throughput  *throughputResult `json:"delivery_throughput,omitempty"`
	Latency     *latencyResult    `json:"latency,omitempty"`
	API         *apiResult        `json:"api_throughput,omitempty"`
	Retry       *retryResult      `json:"retry_precision,omitempty"`
	Noisy       *noisyResult      `json:"noisy_neighbour,omitempty"`
	Growth      *growthResult     `json:"growth,omitempty"` // -growth N
	Resources   *resources        `json:"resources,omitempty"`
	Goals       []goal            `json:"goals"`
	Errors      map[string]string `json:"errors,omitempty"`
}

type machine struct {
	CPUs         int               `json:"cpus"`
	CPUModel     string            `json:"cpu_model"`
	MemoryMiB    int               `json:"memory_mib"`
	Kernel       string            `json:"kernel"`
	GoVersion    string            `json:"go_version"`
	Postgres     map[string]string `json:"postgres"`
	LoadAvgStart string            `json:"loadavg_start"`
	LoadAvgEnd   string            `json:"loadavg_end"`
}

// settings are the knobs the numbers depend on, the same for the service and its baselines.
type settings struct {
	PoolMaxConns        int     `json:"pool_max_conns"`
	DeliveryWorkers     int     `json:"delivery_workers"`
	FetchPollIntervalMS float64 `json:"fetch_poll_interval_ms"`
	FetchCooldownMS     float64 `json:"fetch_cooldown_ms"`
	ServiceLogLevel     string  `json:"service_log_level"`
}

// resources is scenario 6, gathered from the other scenarios' service runs.
type resources struct {
	PeakRSSMiB        float64            `json:"peak_rss_mib"` // the largest of every run's VmHWM
	PeakRSSByRun      map[string]float64 `json:"peak_rss_mib_by_run"`
	AllocsPerDelivery float64            `json:"allocs_per_delivery"`
	BytesPerDelivery  float64            `json:"bytes_per_delivery"`
}

type goal struct {
	Scenario string `json:"scenario"`
	Goal     string `json:"goal"`
	Value    string `json:"value"`
	Met      bool   `json:"met"`
}

// judge states each goal of the issue as met or not.
func (r *results) judge() {
	r.Goals = nil
	add := func(scenario, g, value string, met bool) {
		r.Goals = append(r.Goals, goal{Scenario: scenario, Goal: g, Value: value, Met: met})
	}
	if t := r.Throughput; t != nil {
		add("1 delivery throughput", "≥ 50% of River + signed POST", fmt.Sprintf("%.0f%%", t.PostRatio*100), t.PostRatio >= 0.5)
	}
	if l := r.Latency; l != nil {
		ok := l.Service.Missing == 0 && l.Service.Errors == 0
		add("2 latency", "p50 ≤ 10 ms", fmt.Sprintf("%.1f ms", l.Service.P50), ok && l.Service.P50 <= 10)
		add("2 latency", "p99 ≤ 50 ms", fmt.Sprintf("%.1f ms", l.Service.P99), ok && l.Service.P99 <= 50)
	}
	if a := r.API; a != nil {
		add("3 API throughput", "≥ 50% of pgbench", fmt.Sprintf("%.0f%%", a.Ratio*100), a.Ratio >= 0.5 && a.Service.Errors == 0)
	}
	if rt := r.Retry; rt != nil {
		add("4 retry precision", "every retry ≤ 0.5 s late", fmt.Sprintf("max %.0f ms", rt.MaxLateMS),
			rt.MaxLateMS <= 500 && rt.Incomplete == 0)
	}
	if n := r.Noisy; n != nil {
		add("5 noisy neighbour", "healthy p99 ≤ 100 ms", fmt.Sprintf("%.1f ms", n.Healthy.P99),
			n.Healthy.P99 <= 100 && n.Healthy.Missing == 0)
	}
	if res := r.Resources; res != nil {
		add("6 resources", "peak RSS ≤ 150 MiB", fmt.Sprintf("%.0f MiB", res.PeakRSSMiB), res.PeakRSSMiB > 0 && res.PeakRSSMiB <= 150)
	}
}

// table writes the short table: one row per scenario, service beside baseline.
func (r *results) table(w io.Writer) {
	kind := "full"
	if r.Quick {
		kind = "quick"
	}
	fmt.Fprintf(w, "\nBoohPay bench (%s, %.0f s): %d CPUs, %d MiB, PostgreSQL %s (fsync %s, synchronous_commit %s), pool %d conns\n\n",
		kind, r.DurationS, r.Machine.CPUs, r.Machine.MemoryMiB, r.Machine.Postgres["server_version"],
		r.Machine.Postgres["fsync"], r.Machine.Postgres["synchronous_commit"], r.Settings.PoolMaxConns)
	fmt.Fprintln(w, "| scenario | BoohPay | baseline | ratio |")
	fmt.Fprintln(w, "|---|---|---|---|")
	if t := r.Throughput; t != nil {
		fmt.Fprintf(w, "| 1 delivery throughput, %d queued (%d rounds) | %.0f deliveries/s | %.0f jobs/s (River + signed POST, no ledger) | %.2f |\n",
			t.Events, t.Rounds, t.Service.PerSecond, t.PostBaseline.PerSecond, t.PostRatio)
		fmt.Fprintf(w, "| 1 the same, against bare River | %.0f deliveries/s | %.0f jobs/s (bare River, no-op) | %.2f |\n",
			t.Service.PerSecond, t.Baseline.PerSecond, t.Ratio)
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(w, "| 2 commit→receipt at %.0f/s, p50/p90/p99/max | %s | %s (River no-op) | p99 %.1f× |\n",
			l.Rate, pcts(l.Service.latency), pcts(l.Baseline.latency), ratio(l.Service.P99, l.Baseline.P99))
	}
	if l := r.Latency; l != nil && l.Service.Create != nil {
		c := l.Service.Create
		fmt.Fprintf(w, "| 2 POST /v1/payments at %.0f/s with workers, p50/p90/p99/max | %s | — | — |\n", l.Rate, pcts(*c))
	}
	if a := r.API; a != nil {
		fmt.Fprintf(w, "| 3 create+simulate, %d clients (%d rounds) | %.0f pairs/s | %.0f tps (pgbench, same SQL) | %.2f |\n",
			a.Clients, a.Rounds, a.Service.PairsPerSecond, a.PGBench.PairsPerSecond, a.Ratio)
	}
	if rt := r.Retry; rt != nil {
		parts := make([]string, len(rt.Retries))
		for i, s := range rt.Retries {
			parts[i] = fmt.Sprintf("%.0f", s.MaxLateMS)
		}
		fmt.Fprintf(w, "| 4 retry lateness, %d deliveries × 5 retries | max %s ms | due at 1, 2, 4, 8, 16 s | — |\n",
			rt.Deliveries, strings.Join(parts, "/"))
	}
	if n := r.Noisy; n != nil {
		base := "—"
		if r.Latency != nil {
			base = pcts(r.Latency.Service.latency) + " (alone, scenario 2)"
		}
		fmt.Fprintf(w, "| 5 healthy merchant at %.0f/s beside one hanging 10 s (%.0f/s), p50/p90/p99/max | %s | %s | p99 %s |\n",
			n.Rate, n.NoisyRate, pcts(n.Healthy.latency), base, func() string {
				if r.Latency == nil {
					return "—"
				}
				return fmt.Sprintf("%.1f×", ratio(n.Healthy.P99, r.Latency.Service.P99))
			}())
	}
	if res := r.Resources; res != nil {
		fmt.Fprintf(w, "| 6 peak RSS; allocations per delivery | %.0f MiB; %.0f allocs (%.1f KiB) | — | — |\n",
			res.PeakRSSMiB, res.AllocsPerDelivery, res.BytesPerDelivery/1024)
	}
	if g := r.Growth; g != nil {
		r.growthTable(w, g)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| goal | value | met |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, g := range r.Goals {
		met := "no"
		if g.Met {
			met = "yes"
		}
		fmt.Fprintf(w, "| %s: %s | %s | %s |\n", g.Scenario, g.Goal, g.Value, met)
	}
	for name, err := range r.Errors {
		fmt.Fprintf(w, "\nerror in %s: %s\n", name, err)
	}
}

// growthTable is growth mode's table: the empty ledger beside the grown one.
func (r *results) growthTable(w io.Writer, g *growthResult) {
	fmt.Fprintf(w, "\nGrowth: %d deliveries, %d attempts, %d events filled in %.0f s (insert %.0f s, %d indexes rebuilt %.0f s, VACUUM ANALYZE %.0f s)\n\n",
		g.Deliveries, g.Attempts, g.Events, g.Fill.S, g.Fill.InsertS, len(g.Fill.Indexes), g.Fill.IndexS, g.Fill.VacuumS)
	fmt.Fprintln(w, "| | empty ledger | grown ledger | grown / empty |")
	fmt.Fprintln(w, "|---|---|---|---|")
	if t := r.Throughput; t != nil && t.Grown != nil {
		fmt.Fprintf(w, "| 1 deliveries/s (River + POST %.0f/s) | %.0f (%.2f×) | %.0f (%.2f×) | %.2f |\n",
			t.PostBaseline.PerSecond, t.Service.PerSecond, t.PostRatio, t.Grown.PerSecond, t.GrownPostRatio, t.GrownRatio)
		fmt.Fprintf(w, "| 1 CPU ms per delivery, service / Postgres | %.2f / %.2f | %.2f / %.2f | — |\n",
			t.Service.CPUPerJob.Service, t.Service.CPUPerJob.Postgres, t.Grown.CPUPerJob.Service, t.Grown.CPUPerJob.Postgres)
	}
	if l := r.Latency; l != nil && l.Grown != nil {
		fmt.Fprintf(w, "| 2 commit→receipt at %.0f/s, p50/p90/p99/max | %s | %s | p99 %.2f |\n",
			l.Rate, pcts(l.Service.latency), pcts(l.Grown.latency), ratio(l.Grown.P99, l.Service.P99))
	}
	if g.Empty != nil && g.Grown != nil {
		fmt.Fprintf(w, "| ledger rows: deliveries, attempts | %d, %d | %d, %d | — |\n",
			g.Empty.Deliveries, g.Empty.Attempts, g.Grown.Deliveries, g.Grown.Attempts)
		for _, p := range g.Grown.Plans {
			e := plan{}
			for _, q := range g.Empty.Plans {
				if q.Name == p.Name {
					e = q
				}
			}
			fmt.Fprintf(w, "| %s: ms, buffers | %.2f ms, %d | %.2f ms, %d (%s) | — |\n", p.Name, e.MS, e.Buffers, p.MS, p.Buffers, strings.Join(p.Scans, "; "))
		}
	}
	if p := g.Retention; p != nil {
		fmt.Fprintf(w, "| a day's retention (LedgerPrune) | — | %d attempts + %d deliveries in %.1f s (%.0f rows/s), %d DELETEs mean %.1f ms max %.1f ms | — |\n",
			p.Attempts, p.Deliveries, p.S, p.RowsPerS, p.Statements, p.StatementMeanMS, p.StatementMaxMS)
		fmt.Fprintf(w, "| commit→receipt before / during the prune, p50/p90/p99/max | — | %s / %s | — |\n", pcts(p.Traffic.latency), pcts(p.During.latency))
		fmt.Fprintf(w, "| WAL before / during the prune | — | %.1f / %.1f MiB/s, %.0f / %.0f full-page images/s | — |\n",
			p.WALBefore.MiBPerS, p.WALDuring.MiBPerS, p.WALBefore.FPIPerS, p.WALDuring.FPIPerS)
		fmt.Fprintf(w, "| sizes: before; pruned; vacuumed; a new day | — | %s; %s; %s; %s | — |\n",
			p.SizeBefore, p.SizeAfter, p.SizeVacuumed, p.SizeRefilled)
		for i, v := range p.Vacuums {
			d, a := v["webhook_deliveries"], v["webhook_delivery_attempts"]
			fmt.Fprintf(w, "| VACUUM %d after the prune: index MiB deleted, reusable | — | deliveries %.0f, %.0f; attempts %.0f, %.0f | — |\n",
				i+1, d.NewlyDeletedMiB, d.ReusableMiB, a.NewlyDeletedMiB, a.ReusableMiB)
		}
	}
}

func pcts(l latency) string {
	return fmt.Sprintf("%.1f / %.1f / %.1f / %.1f ms", l.P50, l.P90, l.P99, l.Max)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round(a/b, 1)
}

func (r *results) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// describeMachine reads what the doc reports about the machine.
func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadAvgStart: loadavg()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.CPUModel = firstField("/proc/cpuinfo", "model name")
	if v := firstField("/proc/meminfo", "MemTotal"); v != "" {
		var kb int
		fmt.Sscanf(v, "%d", &kb)
		m.MemoryMiB = kb / 1024
	}
	return m
}

// firstField returns the value of the first "key: value" line with key in path.
func firstField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
