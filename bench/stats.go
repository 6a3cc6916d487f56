package main

import (
	"slices"
	"time"
)

// latency summarizes a set of latencies, in milliseconds.
type latency struct {
	Count   int     `json:"count"`
	Missing int     `json:"missing"` // expected but never observed within the wait
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P99     float64 `json:"p99_ms"`
	Max     float64 `json:"max_ms"`
	Mean    float64 `json:"mean_ms"`
}

// summarize returns the percentiles of ds (nearest rank: p99 of 1000
// samples is the 990th smallest) and counts missing ones.
func summarize(ds []time.Duration, missing int) latency {
	l := latency{Count: len(ds), Missing: missing}
	if len(ds) == 0 {
		return l
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	l.P50 = ms(percentile(s, 50))
	l.P90 = ms(percentile(s, 90))
	l.P99 = ms(percentile(s, 99))
	l.Max = ms(s[len(s)-1])
	l.Mean = ms(sum / time.Duration(len(s)))
	return l
}

// percentile of sorted, by nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 2) }

// round keeps JSON and tables readable: n decimal places.
func round(f float64, n int) float64 {
	p := 1.0
	for range n {
		p *= 10
	}
	if f < 0 {
		return -float64(int64(-f*p+0.5)) / p
	}
	return float64(int64(f*p+0.5)) / p
}
