package jobs

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
)

func TestBoundText(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "ok", strings.Repeat("é", 5000), strings.Repeat("\xff", 5000), strings.Repeat("a\x00", 5000),
		strings.Repeat("a", merchantTextMax), strings.Repeat("a", merchantTextMax-1) + "é"} {
		got := boundText(s)
		require.LessOrEqual(t, len(got), merchantTextMax)
		require.True(t, utf8.ValidString(got))
		require.NotContains(t, got, "\x00")
	}
	require.Equal(t, "ok", boundText("ok"))
}

// lockedBuffer collects log output from the worker's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMerchantTextIsBounded: a merchant endpoint answering a 302 with a
// long Location (50 KB: quoted in the error; 200 KB: past the 64 KiB
// response header limit), a 10 MiB header, or a body of invalid UTF-8 gets at most
// 1 KiB of valid UTF-8 of it into the attempt rows, error_message, River's
// job errors and the logs (issue 13: the Location was stored whole in each).
func TestMerchantTextIsBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	longLocation := "https://elsewhere.example.com/" + strings.Repeat("é\xffx", 200<<10/4)
	hugeHeader := strings.Repeat("h", 10<<20)
	responders := map[string]func(int, http.ResponseWriter, *http.Request){
		"302 with a 200 KB Location": func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header()["Location"] = []string{longLocation}
			w.WriteHeader(http.StatusFound)
		},
		"302 with a 50 KB Location": func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header()["Location"] = []string{longLocation[:50<<10]}
			w.WriteHeader(http.StatusFound)
		},
		"a 10 MiB header": func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Huge", hugeHeader)
			w.WriteHeader(http.StatusInternalServerError)
		},
		"a body of invalid UTF-8": func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write(bytes.Repeat([]byte("\xff\x00"), 4096))
		},
	}
	ids := map[string]uuid.UUID{}
	for name, respond := range responders {
		m, _ := b.merchant(newReceiver(t, respond).URL)
		ids[name] = b.emit(m)
	}
	cfg := testConfig()
	cfg.WebhookMaxRetries = 1 // one retry (a River job error) and the final failure (another)
	logs := &lockedBuffer{}
	b.startWith(cfg, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	ctx := context.Background()
	for name, id := range ids {
		row := b.waitStatus(id, db.DeliveryFailed, 60*time.Second)
		require.LessOrEqual(t, len(*row.ErrorMessage), merchantTextMax, name)
		var attempts, longest int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*), coalesce(max(greatest(octet_length(error), octet_length(response_body))), 0)
			FROM webhook_delivery_attempts WHERE delivery_id = $1`, id).Scan(&attempts, &longest))
		require.Equal(t, 2, attempts, name)
		require.LessOrEqual(t, longest, merchantTextMax, name)
		// River's errors: ours wrapped in one short line of context. The
		// last is recorded once Work has returned: wait for the job to end.
		require.Eventually(t, func() bool { return b.jobState(*row.JobID) == "cancelled" }, time.Minute, 10*time.Millisecond, name)
		var jobErrors []string
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT coalesce(array_agg(e->>'error'), '{}') FROM river_job, unnest(errors) e WHERE id = $1`,
			*row.JobID).Scan(&jobErrors))
		require.Len(t, jobErrors, 2, name)
		for _, e := range jobErrors {
			require.LessOrEqual(t, len(e), merchantTextMax+128, name)
		}
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		require.LessOrEqual(t, len(line), 4*merchantTextMax, "a log line carries a merchant's answer unbounded: %.300s", line)
	}
	require.NotContains(t, logs.String(), strings.Repeat("h", 2*merchantTextMax))
}
