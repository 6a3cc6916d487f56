package jobs

import (
	"bufio"
	"context"
	"crypto/rand"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/boohpay/boohpay/db"
)

// Slow and broken merchants (issue 8): an endpoint that trickles its answer
// (slowloris), sends an endless body or endless headers, fails TLS, resets
// the connection or answers garbage makes each attempt end within the
// webhook timeout as a failed attempt, its connection closed by us; and the
// worker pool stays healthy: other merchants' deliveries go through
// meanwhile and afterwards, and no job is left running.

// brokenServer is a TCP endpoint that misbehaves in one way. It counts the
// connections it accepted and those that ended, i.e. that our side closed
// (every handler runs until its connection fails).
type brokenServer struct {
	ln       net.Listener
	accepted atomic.Int32
	ended    atomic.Int32
}

func newBrokenServer(t *testing.T, handle func(net.Conn)) *brokenServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &brokenServer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			go func() {
				defer s.ended.Add(1)
				defer conn.Close()
				handle(conn)
			}()
		}
	}()
	return s
}

func (s *brokenServer) url(scheme string) string {
	return scheme + "://" + s.ln.Addr().String() + "/hooks"
}

// readRequest reads the request head (and what body has arrived), so the
// answer comes after it as a real server's would.
func readRequest(conn net.Conn) {
	r := bufio.NewReader(conn)
	if req, err := http.ReadRequest(r); err == nil {
		_, _ = r.Discard(int(max(req.ContentLength, 0)))
	}
}

// trickle writes s, then each byte of s after that, pausing between bytes,
// until the connection fails.
func trickle(conn net.Conn, head string, each string, pause time.Duration) {
	if _, err := conn.Write([]byte(head)); err != nil {
		return
	}
	for {
		for i := range len(each) {
			time.Sleep(pause)
			if _, err := conn.Write([]byte{each[i]}); err != nil {
				return
			}
		}
	}
}

// waitClosed reads until our side closes the connection.
func waitClosed(conn net.Conn) {
	buf := make([]byte, 4096)
	for {
		if _, err := conn.Read(buf); err != nil {
			return
		}
	}
}

func reset(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close with RST
	}
}

// brokenEndpoint is one way a merchant endpoint misbehaves.
type brokenEndpoint struct {
	name   string
	url    func(t *testing.T) (string, *brokenServer)
	wantOK bool // a 2xx came within the timeout: delivered, whatever followed
	// reason is the failure's metrics label; "timeout|connection" when
	// either may come first on a loaded machine.
	reason string
	// fails is true for an endpoint whose attempt ends by itself (a
	// reset, a bad certificate, garbage, a body past the drain limit):
	// these run under a generous timeout, so that a handshake slowed
	// down by a loaded machine still ends as the failure it is and not
	// as a timeout. The others end only by our timeout.
	fails bool
}

func TestDeliverySlowAndBrokenMerchants(t *testing.T) {
	t.Parallel()
	endless := strings.Repeat("x", 64<<10)
	selfSigned := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	selfSigned.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake errors are the point
	selfSigned.StartTLS()
	t.Cleanup(selfSigned.Close)
	plain := newReceiver(t, nil)

	server := func(scheme string, handle func(net.Conn)) func(t *testing.T) (string, *brokenServer) {
		return func(t *testing.T) (string, *brokenServer) {
			s := newBrokenServer(t, handle)
			return s.url(scheme), s
		}
	}
	endpoints := []brokenEndpoint{
		{"slowloris status line", server("http", func(c net.Conn) {
			readRequest(c)
			trickle(c, "", "HTTP/1.1 200 OK\r\n", 300*time.Millisecond)
		}), false, reasonTimeout, false},
		{"slowloris headers", server("http", func(c net.Conn) {
			readRequest(c)
			trickle(c, "HTTP/1.1 200 OK\r\n", "X-Slow: aaaaaaaaaaaaaaaa\r\n", 100*time.Millisecond)
		}), false, reasonTimeout, false},
		{"never answers", server("http", func(c net.Conn) { waitClosed(c) }), false, reasonTimeout, false},
		{"endless error body", server("http", func(c net.Conn) {
			readRequest(c)
			trickle(c, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\n", endless, 0)
		}), false, reasonHTTPStatus, true},
		{"endless slow error body", server("http", func(c net.Conn) {
			readRequest(c)
			trickle(c, "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n", "1\r\nx\r\n", 100*time.Millisecond)
		}), false, reasonHTTPStatus, false},
		{"endless headers", server("http", func(c net.Conn) {
			readRequest(c)
			trickle(c, "HTTP/1.1 200 OK\r\n", "X-Endless: "+endless[:4000]+"\r\n", 0)
		}), false, reasonTimeout + "|" + reasonConnection, false},
		{"endless 1xx", server("http", func(c net.Conn) {
			readRequest(c)
			trickle(c, "", "HTTP/1.1 102 Processing\r\n\r\n", 0)
		}), false, reasonTimeout + "|" + reasonConnection, false},
		{"garbage answer", server("http", func(c net.Conn) {
			readRequest(c)
			_, _ = c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n"))
			waitClosed(c)
		}), false, reasonConnection, true},
		{"reset on accept", server("http", func(c net.Conn) { reset(c) }), false, reasonConnection, true},
		{"reset after the request", server("http", func(c net.Conn) { readRequest(c); reset(c) }), false, reasonConnection, true},
		{"reset mid-answer", server("http", func(c net.Conn) {
			readRequest(c)
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Le"))
			reset(c)
		}), false, reasonConnection, true},
		{"TLS handshake never completes", server("https", func(c net.Conn) { waitClosed(c) }), false, reasonTimeout, false},
		{"TLS garbage", server("https", func(c net.Conn) {
			b := make([]byte, 512)
			_, _ = rand.Read(b)
			_, _ = c.Write(b)
			waitClosed(c)
		}), false, reasonConnection, true},
		{"TLS self-signed certificate", func(*testing.T) (string, *brokenServer) { return selfSigned.URL + "/hooks", nil }, false, reasonConnection, true},
		{"TLS to a plain HTTP server", func(*testing.T) (string, *brokenServer) {
			return strings.Replace(plain.URL, "http://", "https://", 1) + "/hooks", nil
		}, false, reasonConnection, true},
		// The merchant said 200 in time: delivered, even if the body never ends.
		{"200 then an endless slow body", server("http", func(c net.Conn) {
			readRequest(c)
			trickle(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "1\r\nx\r\n", 100*time.Millisecond)
		}), true, "", false},
	}

	// The endpoints that end only by our timeout get a short one, so that
	// the test does not wait long on them; those that fail by themselves
	// get a generous one, so that their failure, however slow the machine,
	// comes first.
	var byTimeout, byThemselves []brokenEndpoint
	for _, e := range endpoints {
		if e.fails {
			byThemselves = append(byThemselves, e)
		} else {
			byTimeout = append(byTimeout, e)
		}
	}
	t.Run("ended by the timeout", func(t *testing.T) {
		t.Parallel()
		testBrokenMerchants(t, byTimeout, 2*time.Second)
	})
	t.Run("failing by themselves", func(t *testing.T) {
		t.Parallel()
		testBrokenMerchants(t, byThemselves, time.Minute)
	})
}

// testBrokenMerchants delivers three events to each endpoint and twenty to
// a healthy merchant meanwhile, with timeout per attempt, and checks the
// outcome of each and the health of the pool afterwards.
func testBrokenMerchants(t *testing.T, endpoints []brokenEndpoint, timeout time.Duration) {
	// "Does not hang" bound on one attempt, generous for a loaded machine:
	// the timeout plus 5 s.
	attemptBound := timeout + 5*time.Second

	b := setup(t)
	type target struct {
		brokenEndpoint
		server *brokenServer
		ids    []uuid.UUID
	}
	var targets []*target
	for _, e := range endpoints {
		url, s := e.url(t)
		m, _ := b.merchant("")
		_, err := b.pool.Exec(context.Background(), `UPDATE merchants SET webhook_url = $2, webhook_secret = 'secret-key' WHERE id = $1`, m.ID, url)
		require.NoError(t, err)
		tg := &target{brokenEndpoint: e, server: s}
		for range 3 {
			tg.ids = append(tg.ids, b.emit(m))
		}
		targets = append(targets, tg)
	}
	healthy := newReceiver(t, nil)
	good, _ := b.merchant(healthy.URL)
	var goodIDs []uuid.UUID
	for range 20 {
		goodIDs = append(goodIDs, b.emit(good))
	}

	cfg := testConfig()
	cfg.WebhookTimeout = timeout
	cfg.WebhookMaxRetries = 1 // two attempts each, through the retry path
	cfg.Workers = 8           // fewer workers than broken deliveries: the pool must keep turning
	reasons := &reasonLog{byDelivery: map[string][]string{}}
	b.startWith(cfg, slog.New(reasons))

	// The healthy merchant is served while the broken ones misbehave.
	for _, id := range goodIDs {
		b.waitStatus(id, db.DeliverySucceeded, 60*time.Second)
	}

	for _, tg := range targets {
		for _, id := range tg.ids {
			want := db.DeliveryFailed
			if tg.wantOK {
				want = db.DeliverySucceeded
			}
			row := b.waitStatus(id, want, 120*time.Second)
			rows, err := b.pool.Query(context.Background(), `SELECT duration_ms, coalesce(error, '') FROM webhook_delivery_attempts WHERE delivery_id = $1`, id)
			require.NoError(t, err)
			n := 0
			for rows.Next() {
				var ms int
				var msg string
				require.NoError(t, rows.Scan(&ms, &msg))
				n++
				require.LessOrEqual(t, time.Duration(ms)*time.Millisecond, attemptBound, "%s: an attempt took %d ms", tg.name, ms)
				if !tg.wantOK {
					require.NotEmpty(t, msg, tg.name)
				}
			}
			require.NoError(t, rows.Err())
			if tg.wantOK {
				require.Equal(t, 1, n, tg.name)
				continue
			}
			require.Equal(t, 2, n, "%s: the first attempt and its retry", tg.name)
			// Logged just after the ledger commit.
			require.Eventually(t, func() bool { return len(reasons.of(id)) == 2 }, time.Minute, 5*time.Millisecond, tg.name)
			got := reasons.of(id)
			for _, r := range got {
				require.Contains(t, strings.Split(tg.reason, "|"), r, "%s: %s", tg.name, *row.ErrorMessage)
			}
			t.Logf("%s: %s (%s)", tg.name, *row.ErrorMessage, tg.reason)
		}
	}

	// Every connection a broken endpoint accepted was closed by us.
	for _, tg := range targets {
		if tg.server == nil {
			continue
		}
		require.Positive(t, tg.server.accepted.Load(), tg.name)
		require.Eventually(t, func() bool { return tg.server.ended.Load() == tg.server.accepted.Load() }, attemptBound, 10*time.Millisecond,
			"%s: %d of %d connections still open", tg.name, tg.server.accepted.Load()-tg.server.ended.Load(), tg.server.accepted.Load())
	}

	// The pool is healthy afterwards: nothing stuck, new deliveries go through.
	// (Eventually: a retry fetched a moment ago may still be finishing.)
	require.Eventually(t, func() bool {
		return b.count(`SELECT count(*) FROM river_job WHERE state = 'running'`) == 0
	}, time.Minute, 10*time.Millisecond, "jobs stuck running")
	for range 20 {
		goodIDs = append(goodIDs, b.emit(good))
	}
	for _, id := range goodIDs {
		b.waitStatus(id, db.DeliverySucceeded, 60*time.Second)
	}
	require.Len(t, healthy.got(), len(goodIDs))
	require.Equal(t, len(goodIDs), b.count(`SELECT count(*) FROM webhook_deliveries WHERE merchant_id = $1 AND attempts = 1`, good.ID))
}

// reasonLog keeps each failed attempt's reason (the metrics label) by delivery.
type reasonLog struct {
	mu         sync.Mutex
	byDelivery map[string][]string
}

func (l *reasonLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *reasonLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *reasonLog) WithGroup(string) slog.Handler            { return l }

func (l *reasonLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "webhook attempt" {
		return nil
	}
	var id, reason string
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "delivery_id":
			id = a.Value.String()
		case "reason":
			reason = a.Value.String()
		}
		return true
	})
	if reason != "" {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.byDelivery[id] = append(l.byDelivery[id], reason)
	}
	return nil
}

func (l *reasonLog) of(id uuid.UUID) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byDelivery[id.String()]
}

// A merchant whose endpoint hangs keeps to its own slots (MerchantConcurrency
// attempts in flight per process) while its backlog waits, snoozed, holding
// no worker; other merchants are served meanwhile. The moment the endpoint
// answers again, its backlog flows: each freed slot wakes the next snoozed
// job at once. The snooze alone (about WEBHOOK_TIMEOUT, here a minute) would
// hold the backlog back for that long; every delivery arriving before the
// first snooze could have ended proves the wake moved them.
func TestHangingMerchantBacklogFlowsOnceItAnswers(t *testing.T) {
	t.Parallel()
	const (
		slots   = 4
		backlog = 100
	)
	b := setup(t)
	var inFlight, maxInFlight, ended atomic.Int32
	answering := make(chan struct{})
	hanging := newReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-answering:
		case <-r.Context().Done():
			ended.Add(1)
		}
		inFlight.Add(-1)
		w.WriteHeader(http.StatusOK)
	})
	var once sync.Once
	answer := func() { once.Do(func() { close(answering) }) }
	t.Cleanup(answer) // before the receiver closes
	healthy := newReceiver(t, nil)
	slow, _ := b.merchant(hanging.URL)
	fast, _ := b.merchant(healthy.URL)
	var slowIDs []uuid.UUID
	for range backlog {
		slowIDs = append(slowIDs, b.emit(slow))
	}

	cfg := testConfig()
	cfg.WebhookTimeout = time.Minute // no hung attempt ends, and no snooze, during the test
	cfg.MerchantConcurrency = slots
	cfg.Workers = 16
	b.start(cfg)

	// The hanging merchant holds its cap and no more; the rest of its
	// backlog is snoozed, waiting for a slot (at first briefly, while the
	// hang is younger than slotWait; then for about the timeout).
	snoozed := func() int {
		return b.count(`SELECT count(*) FROM river_job j JOIN webhook_deliveries d ON d.job_id = j.id
			WHERE d.merchant_id = $1 AND j.state IN ('available', 'scheduled') AND j.scheduled_at > now() + interval '10 seconds'`, slow.ID)
	}
	require.Eventually(t, func() bool { return inFlight.Load() == slots && snoozed() == backlog-slots }, 60*time.Second, 10*time.Millisecond,
		"in flight %d, snoozed %d", inFlight.Load(), snoozed())

	// Other merchants are served meanwhile.
	var fastIDs []uuid.UUID
	for range 30 {
		fastIDs = append(fastIDs, b.emit(fast))
	}
	for _, id := range fastIDs {
		b.waitStatus(id, db.DeliverySucceeded, 30*time.Second)
	}
	require.Equal(t, int32(slots), inFlight.Load(), "still hanging")

	// When each snoozed job would come back on its own.
	snoozedUntil := map[string]time.Time{}
	rows, err := b.pool.Query(context.Background(), `SELECT d.id, j.scheduled_at FROM river_job j JOIN webhook_deliveries d ON d.job_id = j.id
		WHERE d.merchant_id = $1 AND j.state IN ('available', 'scheduled') AND j.scheduled_at > now()`, slow.ID)
	require.NoError(t, err)
	for rows.Next() {
		var id uuid.UUID
		var at time.Time
		require.NoError(t, rows.Scan(&id, &at))
		snoozedUntil[id.String()] = at
	}
	require.NoError(t, rows.Err())
	require.Len(t, snoozedUntil, backlog-slots)

	recoveredAt := time.Now()
	answer()
	// "Does not wait for the snooze": within WEBHOOK_TIMEOUT of recovery,
	// before any snoozed job's own snooze (at least WEBHOOK_TIMEOUT) ends.
	for _, id := range slowIDs {
		row := b.waitStatus(id, db.DeliverySucceeded, cfg.WebhookTimeout-5*time.Second)
		require.Equal(t, 1, row.Attempts, "waiting for a slot is not an attempt")
	}
	require.Zero(t, ended.Load(), "no attempt timed out")
	require.LessOrEqual(t, maxInFlight.Load(), int32(slots), "never more than the merchant's cap in flight")
	// Woken, not waited out: each snoozed delivery arrived before its
	// snooze would have ended.
	for _, r := range hanging.got() {
		if until, ok := snoozedUntil[r.header.Get("X-BoohPay-Delivery")]; ok {
			require.True(t, r.at.Before(until), "a delivery waited out its snooze (until %s) instead of being woken", until)
		}
	}
	var last time.Time
	for _, r := range hanging.got() {
		if r.at.After(last) {
			last = r.at
		}
	}
	require.Len(t, hanging.got(), backlog, "each delivered once")
	t.Logf("hanging merchant (cap %d) answered again: its backlog of %d flowed in %s (last request %s after recovery)",
		slots, backlog-slots, time.Since(recoveredAt).Round(time.Millisecond), last.Sub(recoveredAt).Round(time.Millisecond))
}
