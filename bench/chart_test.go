package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// The chart is well-formed SVG with every panel, and with none.
func TestWriteChart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	full := &results{
		Machine:    machine{CPUs: 2, Postgres: map[string]string{"server_version": "15", "fsync": "on"}},
		Throughput: &throughputResult{Ratio: 0.1, Service: throughputRun{PerSecond: 100}, Baseline: throughputRun{PerSecond: 1000}},
		Latency:    &latencyResult{Service: latencyRun{latency: latency{P50: 3, P90: 5, P99: 9, Max: 20}}},
		API:        &apiResult{Ratio: 0.6, Service: apiRun{PairsPerSecond: 60}, PGBench: apiRun{PairsPerSecond: 100}},
		Retry:      &retryResult{Deliveries: 2, Retries: []retryStat{{DelayS: 1, P50LateMS: 10, MaxLateMS: 700}}},
		Noisy:      &noisyResult{Healthy: latencyRun{latency: latency{P50: 4, P99: 60, Max: 90}}},
	}
	for name, r := range map[string]*results{"full.svg": full, "empty.svg": {}} {
		path := filepath.Join(dir, name)
		require.NoError(t, writeChart(path, r))
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		var doc struct {
			XMLName xml.Name `xml:"svg"`
		}
		require.NoError(t, xml.Unmarshal(b, &doc), name)
	}
}
