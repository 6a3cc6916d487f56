package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Scenario 4, retry precision: deliveries to an endpoint that answers 500
// every time, on the real schedule (retries 1, 2, 4, 8, 16 s after
// each failure, then FAILED). Each retry's lateness is its arrival minus
// (the previous attempt's arrival + its delay); the previous attempt's
// answer left a little after its arrival, so this slightly overstates it.

var retrySchedule = []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second}

type retryResult struct {
	Deliveries int         `json:"deliveries"`
	Retries    []retryStat `json:"retries"`
	MaxLateMS  float64     `json:"max_late_ms"`
	// Incomplete deliveries did not show all 6 attempts in time;
	// LedgerFailed rows ended FAILED with attempts = 6, as they should.
	Incomplete   int `json:"incomplete"`
	LedgerFailed int `json:"ledger_failed"`
}

type retryStat struct {
	DelayS    float64 `json:"delay_s"`
	Count     int     `json:"count"`
	MinLateMS float64 `json:"min_late_ms"`
	P50LateMS float64 `json:"p50_late_ms"`
	MaxLateMS float64 `json:"max_late_ms"`
}

func (b *bench) retry(ctx context.Context) (*retryResult, error) {
	k := b.opts.retryDeliveries
	res := &retryResult{Deliveries: k}
	dbURL, err := b.pg.database(ctx, "retry")
	if err != nil {
		return nil, err
	}
	ep := b.rcv.endpoint("failing", answerFail)
	m, err := b.createMerchant(ctx, dbURL, "failing", ep.url)
	if err != nil {
		return nil, err
	}
	ep.setSecret(m.WebhookSecret)
	svc, err := b.startService(ctx, "retry", dbURL, "all")
	if err != nil {
		return nil, err
	}
	defer svc.stop()
	// Spread the first attempts over a second or two, so the retries do not
	// all fall due in the same instant.
	api := newAPIClient(svc.base, m.APIKey)
	for range k {
		if _, err := api.createPayment(ctx); err != nil {
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
	attempts := len(retrySchedule) + 1
	var total time.Duration
	for _, d := range retrySchedule {
		total += d
	}
	byDelivery := func() map[string][]time.Time {
		rs, _ := ep.snapshot()
		out := map[string][]time.Time{}
		for _, r := range rs {
			out[r.DeliveryID] = append(out[r.DeliveryID], r.At)
		}
		return out
	}
	_ = waitFor(ctx, total+15*time.Second, 100*time.Millisecond, func(context.Context) (bool, error) {
		got := byDelivery()
		if len(got) < k {
			return false, nil
		}
		for _, ts := range got {
			if len(ts) < attempts {
				return false, nil
			}
		}
		return true, nil
	})
	if _, bad := ep.snapshot(); bad > 0 {
		return nil, fmt.Errorf("%d retries had a bad signature", bad)
	}
	late := make([][]time.Duration, len(retrySchedule))
	got := byDelivery()
	res.Incomplete = k - len(got)
	for _, ts := range got {
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		if len(ts) < attempts {
			res.Incomplete++
		}
		for i := 1; i < len(ts) && i <= len(retrySchedule); i++ {
			late[i-1] = append(late[i-1], ts[i].Sub(ts[i-1])-retrySchedule[i-1])
		}
	}
	for i, ds := range late {
		st := retryStat{DelayS: retrySchedule[i].Seconds(), Count: len(ds)}
		if len(ds) > 0 {
			l := summarize(ds, 0)
			st.P50LateMS, st.MaxLateMS = l.P50, l.Max
			st.MinLateMS = ms(slices.Min(ds))
			res.MaxLateMS = max(res.MaxLateMS, l.Max)
		}
		res.Retries = append(res.Retries, st)
	}
	// The ledger should say FAILED after exactly six attempts.
	err = waitFor(ctx, 5*time.Second, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		conn, err := connect(ctx, dbURL)
		if err != nil {
			return false, err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		err = conn.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE status = 'FAILED' AND attempts = $1`,
			attempts).Scan(&res.LedgerFailed)
		return res.LedgerFailed >= k, err
	})
	if err != nil {
		b.logf("retry: the ledger shows %d of %d deliveries FAILED after %d attempts: %v", res.LedgerFailed, k, attempts, err)
	}
	rss, err := svc.finish()
	if err != nil {
		return nil, err
	}
	b.noteRSS("retry", mib(rss))
	b.logf("retry: max lateness %.0f ms over %d deliveries", res.MaxLateMS, k)
	return res, nil
}
