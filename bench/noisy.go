package main

import (
	"context"
	"fmt"
	"time"
)

// Scenario 5, noisy neighbour: two merchants share the service; one's
// endpoint hangs for the service's whole 10 s timeout on every call, the
// other's answers at once. The healthy merchant gets events at the latency
// scenario's rate and its commit-to-arrival latency is measured the same
// way, so that scenario's service run (the same merchant traffic, alone) is
// the baseline. The hanging merchant gets a quarter as many on top: enough
// to hold its share of workers for good and pile up a backlog of thousands.

const noisyRate = latencyRate / 4

type noisyResult struct {
	Rate      float64    `json:"events_per_second"` // to the healthy merchant
	NoisyRate float64    `json:"noisy_events_per_second"`
	DurationS float64    `json:"duration_s"`
	HangS     float64    `json:"hang_s"`
	Healthy   latencyRun `json:"healthy"`
	// NoisyEvents were created for the hanging merchant; NoisyAttempts
	// reached its endpoint (each one holding a worker for the whole hang).
	NoisyEvents   int `json:"noisy_events"`
	NoisyAttempts int `json:"noisy_attempts"`
}

func (b *bench) noisy(ctx context.Context) (*noisyResult, error) {
	total := latencyRate + noisyRate
	n := int(total * b.opts.noisyFor.Seconds())
	res := &noisyResult{Rate: latencyRate, NoisyRate: noisyRate, DurationS: b.opts.noisyFor.Seconds(), HangS: hangFor.Seconds()}

	dbURL, err := b.pg.database(ctx, "noisy")
	if err != nil {
		return nil, err
	}
	healthy := b.rcv.endpoint("healthy", answerOK)
	hanging := b.rcv.endpoint("hanging", answerHang)
	defer hanging.endHangs()
	mh, err := b.createMerchant(ctx, dbURL, "healthy", healthy.url)
	if err != nil {
		return nil, err
	}
	healthy.setSecret(mh.WebhookSecret)
	mn, err := b.createMerchant(ctx, dbURL, "hanging", hanging.url)
	if err != nil {
		return nil, err
	}
	hanging.setSecret(mn.WebhookSecret)
	svc, err := b.startService(ctx, "noisy", dbURL, "all")
	if err != nil {
		return nil, err
	}
	defer svc.stop()
	clients := []*apiClient{newAPIClient(svc.base, mh.APIKey), newAPIClient(svc.base, mn.APIKey)}
	b.createAtRate(ctx, clients, nil, latencyRate, int(latencyRate*warmup.Seconds()))
	c0 := b.cpu.snapshot(svc.pid())
	every := int(total / noisyRate) // every 5th event is the hanging merchant's
	load := b.createAtRate(ctx, clients, func(i int) int {
		if i%every == every-1 {
			return 1
		}
		return 0
	}, total, n)
	res.Healthy, err = b.deliveryLatencies(ctx, healthy, load.committed[0], 30*time.Second)
	if err != nil {
		return nil, err
	}
	res.Healthy.CPU = c0.use(b.cpu.snapshot(svc.pid()))
	res.Healthy.MaxLagMS, res.Healthy.Errors = ms(load.maxLag), load.errors
	res.NoisyEvents = len(load.committed[1])
	res.NoisyAttempts = hanging.count()
	hanging.endHangs()
	if load.errors > 0 {
		return nil, fmt.Errorf("%d creates failed (the first is logged above)", load.errors)
	}
	rss, err := svc.finish()
	if err != nil {
		return nil, err
	}
	res.Healthy.PeakRSSMiB = mib(rss)
	b.noteRSS("noisy", res.Healthy.PeakRSSMiB)
	b.logf("noisy: healthy p50 %.1f p99 %.1f max %.1f ms beside %d hanging events (%d attempts) (%s)",
		res.Healthy.P50, res.Healthy.P99, res.Healthy.Max, res.NoisyEvents, res.NoisyAttempts, res.Healthy.CPU)
	return res, nil
}
