package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/boohpay/boohpay/db"
	"github.com/boohpay/boohpay/jobs"
	"github.com/boohpay/boohpay/signing"
)

// The River baselines: River alone, with a worker that does nothing, and
// River with a worker that makes one signed POST per job, on the same queue
// with the same settings as the service's delivery queue (db's outbox
// constants, which jobs.NewClient's defaults are) and a pool built the same
// way (db.Connect on a URL of the same form). The gap between the POST
// baseline and the service is what the ledger costs.
const (
	riverWorkers           = db.DeliveryWorkers
	riverFetchPollInterval = db.DeliveryFetchPollInterval
	riverFetchCooldown     = db.DeliveryFetchCooldown
	// riverInsertNotifyCooldown spaces insert notifications (River sends at
	// most one per queue per client-level FetchCooldown), as db.NewStore's
	// inserting client does.
	riverInsertNotifyCooldown = db.DeliveryNotifyCooldown
)

// noopArgs has the shape of db.DeliveryArgs (one uuid) plus a sequence number.
type noopArgs struct {
	Seq        int       `json:"seq"`
	DeliveryID uuid.UUID `json:"delivery_id"`
}

func (noopArgs) Kind() string { return "bench_noop" }

func (noopArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: db.DeliveryQueue, MaxAttempts: 100}
}

// postArgs is a job of the River + signed POST baseline: the index of the
// receiver endpoint to POST to and a sequence number.
type postArgs struct {
	Seq      int `json:"seq"`
	Endpoint int `json:"endpoint"`
}

func (postArgs) Kind() string { return "bench_post" }

func (postArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: db.DeliveryQueue, MaxAttempts: 100}
}

// postWorker is the River + signed HTTP POST baseline: per job, the body of a
// payment.pending webhook signed as the service signs it (both signatures,
// the same signing package) and POSTed with the service's headers through
// the service's HTTP client, answer read as the service reads it. No ledger:
// the gap between this and the service is what the ledger costs.
type postWorker struct {
	river.WorkerDefaults[postArgs]
	client    *http.Client
	endpoints []*endpoint
	body      []byte
}

func newPostWorker(endpoints []*endpoint) *postWorker {
	// The shape and size of a payment.pending body from PaymentCreateTx.
	body := fmt.Sprintf(`{"id":"%s","event":"payment.pending","timestamp":"%s","data":{"id":"%s","object":"payment",`+
		`"amount":5000,"currency":"XAF","status":"PENDING","gateway":"sandbox","reference":"bench","metadata":{"order":"42"},`+
		`"provider_reference":null,"failure_reason":null,"created_at":"%[2]s","updated_at":"%[2]s"}}`,
		uuid.New(), time.Now().UTC().Format(time.RFC3339Nano), uuid.New())
	return &postWorker{client: jobs.NewHTTPClient(jobs.WebhookTimeoutDefault, true), endpoints: endpoints, body: []byte(body)}
}

func (w *postWorker) Work(ctx context.Context, job *river.Job[postArgs]) error {
	ep := w.endpoints[job.Args.Endpoint%len(w.endpoints)]
	secret := ep.getSecret()
	ctx, cancel := context.WithTimeout(ctx, jobs.WebhookTimeoutDefault)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.url, bytes.NewReader(w.body))
	if err != nil {
		return err
	}
	id, ts := uuid.NewString(), time.Now().Unix()
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "BoohPay-Webhooks/1.0")
	h.Set("X-BoohPay-Event", "payment.pending")
	h.Set("X-BoohPay-Delivery", id)
	h["webhook-id"] = []string{id}
	h["webhook-timestamp"] = []string{strconv.FormatInt(ts, 10)}
	h.Set("X-BoohPay-Signature", signing.Legacy(secret, w.body))
	h["webhook-signature"] = []string{signing.Standard(secret, id, ts, w.body)}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	started func(seq int, at time.Time) // may be nil
}

func (w *noopWorker) Work(_ context.Context, job *river.Job[noopArgs]) error {
	if w.started != nil {
		w.started(job.Args.Seq, time.Now())
	}
	return nil
}

// bareRiver is a started River client working noopArgs, and its pool.
type bareRiver struct {
	pool   *pgxpool.Pool
	client *river.Client[pgx.Tx]
}

// startBareRiver starts River working noopArgs and, when endpoints is not
// empty, postArgs to them: both baselines on one client and one queue.
func startBareRiver(ctx context.Context, dbURL string, started func(seq int, at time.Time), endpoints ...*endpoint) (*bareRiver, error) {
	pool, err := db.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &noopWorker{started: started})
	if len(endpoints) > 0 {
		river.AddWorker(workers, newPostWorker(endpoints))
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		// The baseline inserts with this client, so its client-level
		// cooldown is the service's inserting client's.
		FetchCooldown: riverInsertNotifyCooldown,
		Queues: map[string]river.QueueConfig{
			db.DeliveryQueue: {
				MaxWorkers:        riverWorkers,
				FetchPollInterval: riverFetchPollInterval,
				FetchCooldown:     riverFetchCooldown,
			},
		},
		Workers: workers,
	})
	if err != nil {
		pool.Close()
		return nil, err
	}
	if err := client.Start(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return &bareRiver{pool: pool, client: client}, nil
}

func (r *bareRiver) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = r.client.Stop(ctx)
	r.pool.Close()
}
