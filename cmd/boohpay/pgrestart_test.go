package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pgInstance is a dedicated Postgres (scripts/pg.sh) that a test may stop and
// start under the service.
type pgInstance struct {
	name string
	port int
	url  string
}

// startPostgres starts a throwaway instance on a free port; it is destroyed
// when the test ends.
func startPostgres(t *testing.T, prefix string) *pgInstance {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	pg := &pgInstance{name: prefix + "-" + hex.EncodeToString(b), port: freePort(t)}
	t.Cleanup(func() {
		if out, err := pgScript("destroy", pg.name); err != nil {
			t.Logf("pg.sh destroy %s: %v\n%s", pg.name, err, out)
		}
	})
	out, err := pgScript("start", pg.name, fmt.Sprint(pg.port), "fast")
	require.NoError(t, err, "pg.sh start: %s", out)
	pg.url = strings.TrimSpace(lastLine(out))
	require.True(t, strings.HasPrefix(pg.url, "postgres://"), "pg.sh start printed %q", out)
	return pg
}

func (pg *pgInstance) stop(t *testing.T) {
	t.Helper()
	out, err := pgScript("stop", pg.name)
	require.NoError(t, err, "pg.sh stop: %s", out)
}

func (pg *pgInstance) start(t *testing.T) {
	t.Helper()
	out, err := pgScript("start", pg.name, fmt.Sprint(pg.port), "fast")
	require.NoError(t, err, "pg.sh start: %s", out)
}

func pgScript(args ...string) (string, error) {
	script, err := filepath.Abs("../../scripts/pg.sh")
	if err != nil {
		return "", err
	}
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	var out strings.Builder
	cmd.Stdout = &out
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	err = cmd.Run()
	if err != nil {
		return out.String() + stderr.String(), err
	}
	return out.String(), nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestPostgresRestartUnderLoad stops the service's Postgres under load and
// starts it again, one or more times. While the database is gone the service
// keeps running and answers every database-backed request with 503 and the
// error shape, promptly (no hang, no 500, no crash; /healthz stays 200 and
// /readyz says 503); once it is back the service recovers by itself, River
// resumes without a restart, and no committed event is lost.
func TestPostgresRestartUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := startPostgres(t, "pgrestart")
	_, err := runCmd(t, map[string]string{"DATABASE_URL": pg.url}, "migrate", "up")
	require.NoError(t, err)
	pool := openPool(t, pg.url)
	s := newSink(t, 20*time.Millisecond)
	key := newMerchant(t, pg.url, s)

	c := startChild(t, baseEnv(pg.url, "WEBHOOK_TIMEOUT=5s", "WEBHOOK_SWEEP_INTERVAL=2s"))
	var base atomic.Pointer[string]
	base.Store(&c.base)
	l := newLoad(key, &base)

	// Every answer given while the database is down.
	var down atomic.Bool
	var mu sync.Mutex
	var outage []string
	var outageAnswers, unavailable int
	var slowest time.Duration
	l.onAnswer = func(code int, body []byte, took time.Duration) {
		if !down.Load() {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		outageAnswers++
		slowest = max(slowest, took)
		switch {
		case code == http.StatusServiceUnavailable:
			unavailable++
			if problem := errorShapeProblem(body, "service_unavailable"); problem != "" {
				outage = append(outage, problem)
			}
		case code >= 200 && code < 300:
			// Committed just before the database went away.
		default:
			outage = append(outage, fmt.Sprintf("HTTP %d (%s): %s", code, took, body))
		}
	}
	stopLoad := l.run(ctx, 4)
	defer stopLoad()

	probe := func(path string) (int, []byte) {
		client := &http.Client{Timeout: 30 * time.Second}
		req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := client.Do(req)
		require.NoError(t, err, "GET %s while the database is down: the service must answer, not hang", path)
		defer res.Body.Close()
		var body json.RawMessage
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body
	}

	var lastRestart time.Time
	for cycle := range pick(1, 5) {
		require.Eventually(t, func() bool { return l.ok.Load() > int64(20*(cycle+1)) }, 60*time.Second, 10*time.Millisecond)
		down.Store(true)
		pg.stop(t)
		outageStart := time.Now()
		// While it is down: 503 in the error shape, promptly.
		for time.Since(outageStart) < pick(3*time.Second, 20*time.Second) {
			code, body := probe("/v1/payments")
			require.Equal(t, http.StatusServiceUnavailable, code, "%s", body)
			require.Empty(t, errorShapeProblem(body, "service_unavailable"))
			code, _ = probe("/readyz")
			require.Equal(t, http.StatusServiceUnavailable, code)
			code, _ = probe("/healthz")
			require.Equal(t, http.StatusOK, code, "alive while the database is down")
			time.Sleep(200 * time.Millisecond)
		}
		select {
		case <-c.exited:
			t.Fatalf("the service exited while the database was down: %v\nlog:\n%s", c.err, c.logs)
		default:
		}
		pg.start(t)
		lastRestart = time.Now()
		down.Store(false)
		// It recovers by itself.
		require.Eventually(t, func() bool {
			code, _ := probe("/v1/payments")
			return code == http.StatusOK
		}, 60*time.Second, 100*time.Millisecond, "the service did not recover; log:\n%s", c.logs)
		t.Logf("cycle %d: database down %s, back at %s", cycle+1, time.Since(outageStart).Round(time.Millisecond), lastRestart.Format(time.TimeOnly))
	}

	// More load after the last restart: River must work these without a restart.
	okBefore := l.ok.Load()
	require.Eventually(t, func() bool { return l.ok.Load() > okBefore+40 }, 60*time.Second, 10*time.Millisecond)
	stopLoad()
	var after int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE created_at > $1`, lastRestart).Scan(&after))
	require.Positive(t, after)

	f := requireAllDelivered(t, pool, s, pick(90*time.Second, 5*time.Minute))
	mu.Lock()
	require.Empty(t, outage, "answers while the database was down")
	require.Positive(t, unavailable, "the load saw the outage as 503s")
	mu.Unlock()
	select {
	case <-c.exited:
		t.Fatalf("the service exited: %v", c.err)
	default:
	}
	require.NoError(t, c.terminate(t, 60*time.Second))
	reportFigures(t, "restarts=%d events=%d (after the last restart %d) receipts=%d duplicates=%d (%s) answers_during_outage=%d (503: %d, slowest %s)",
		pick(1, 5), f.Events, after, f.Receipts, f.Duplicates, f.causes(), outageAnswers, unavailable, slowest.Round(time.Millisecond))
}

// errorShapeProblem returns "" when body is the API's error shape
// ({"error": {"type", "code", "message"}}) with code,
// and says what is wrong otherwise.
func errorShapeProblem(body []byte, code string) string {
	var e struct {
		Error *struct {
			Type    string  `json:"type"`
			Code    string  `json:"code"`
			Message string  `json:"message"`
			Param   *string `json:"param"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		return fmt.Sprintf("not the error shape: %s", body)
	}
	if e.Error.Type == "" || e.Error.Message == "" || e.Error.Code != code {
		return fmt.Sprintf("want code %s in the error shape: %s", code, body)
	}
	return ""
}
