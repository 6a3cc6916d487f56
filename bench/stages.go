package main

import (
	"context"
	"fmt"
)

// deliveryStages is where a delivery's time went, in milliseconds, averaged
// over a batch: from River's fetch (river_job.attempted_at) to the
// attempt's start (last_attempt_at), from there to the ledger write
// (delivered_at, stamped by the write's statement) of which the POST took
// PostMS (the attempt's duration_ms), and from the write to River's
// completion (finalized_at). A delivery's worker slot is held from the
// fetch until its write has committed.
type deliveryStages struct {
	FetchToAttemptMS float64 `json:"fetch_to_attempt_ms"`
	AttemptToWriteMS float64 `json:"attempt_to_write_ms"`
	PostMS           float64 `json:"post_ms"`
	WriteToFinishMS  float64 `json:"write_to_finish_ms"`
}

func (s deliveryStages) String() string {
	return fmt.Sprintf("fetch→attempt %.1f ms, attempt→write %.1f ms (POST %.1f), write→completed %.1f ms",
		s.FetchToAttemptMS, s.AttemptToWriteMS, s.PostMS, s.WriteToFinishMS)
}

// measureStages reads the stages of the deliveries whose jobs' ids are
// above after.
func measureStages(ctx context.Context, dbURL string, after int64) (deliveryStages, error) {
	var s deliveryStages
	conn, err := connect(ctx, dbURL)
	if err != nil {
		return s, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = conn.QueryRow(ctx, `SELECT
			coalesce(avg(extract(epoch FROM d.last_attempt_at - j.attempted_at) * 1000), 0)::float8,
			coalesce(avg(extract(epoch FROM d.delivered_at - d.last_attempt_at) * 1000), 0)::float8,
			avg(a.duration_ms)::float8,
			avg(extract(epoch FROM j.finalized_at - d.delivered_at) * 1000)::float8
		FROM river_job j
		JOIN webhook_deliveries d ON d.job_id = j.id
		JOIN webhook_delivery_attempts a ON a.delivery_id = d.id
		WHERE j.id > $1 AND j.kind = 'webhook_delivery'`, after).
		Scan(&s.FetchToAttemptMS, &s.AttemptToWriteMS, &s.PostMS, &s.WriteToFinishMS)
	if err != nil {
		return s, fmt.Errorf("reading delivery stages: %w", err)
	}
	s.FetchToAttemptMS, s.AttemptToWriteMS = round(s.FetchToAttemptMS, 1), round(s.AttemptToWriteMS, 1)
	s.PostMS, s.WriteToFinishMS = round(s.PostMS, 1), round(s.WriteToFinishMS, 1)
	return s, nil
}
