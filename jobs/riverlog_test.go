package jobs

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/db/dbtest"
)

// TestDeliveryLogsOneLinePerAttempt: at the default level, a delivery that
// fails twice then succeeds logs exactly one line per failed attempt, the
// worker's, with its duration in milliseconds; River's repeat of the same
// error and its routine job counts are at debug.
func TestDeliveryLogsOneLinePerAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, respondFrom(3, http.StatusBadGateway, http.StatusNoContent))
	m, _ := b.merchant(rc.URL)
	id := b.emit(m)
	logs := &dbtest.Logs{}
	b.startWith(testConfig(), slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	b.waitStatus(id, db.DeliverySucceeded, 10*time.Second)
	// The success is recorded before River's completer finishes the job:
	// stop the client so every line it would write is written.
	require.NoError(t, b.client.Stop(t.Context()))

	var attempts []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &l), line)
		msg, _ := l["msg"].(string)
		require.NotContains(t, msg, "Producer job counts")
		require.NotContains(t, msg, "Job errored", "the worker's own line says it: %s", line)
		if msg == "webhook attempt" {
			attempts = append(attempts, l)
		}
	}
	require.Len(t, attempts, 2, "one line per failed attempt (a success is logged at debug):\n%s", logs)
	for _, l := range attempts {
		require.Equal(t, id.String(), l["delivery_id"])
		require.Contains(t, l, "duration_ms", "durations carry their unit")
		require.NotContains(t, l, "duration")
	}
}

// TestRiverLogHandlerKeepsOtherJobsErrors: only a delivery job's error is
// demoted; another job's error, which nothing else logs, stays at info.
func TestRiverLogHandlerKeepsOtherJobsErrors(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := newRiverLogger(slog.New(slog.NewJSONHandler(&buf, nil)))
	log.Info("river.JobExecutor: Job errored; retrying", slog.String("job_kind", "webhook_delivery"))
	log.Info("river.JobExecutor: Job errored", slog.String("job_kind", "sweep"))
	log.Info("river.producer: Producer job counts", slog.Int("num_jobs_running", 1))
	log.With(slog.String("job_kind", "webhook_delivery")).Info("river.JobExecutor: Job errored")
	require.Equal(t, 1, strings.Count(buf.String(), "\n"), "%s", buf.String())
	require.Contains(t, buf.String(), `"job_kind":"sweep"`)
}
