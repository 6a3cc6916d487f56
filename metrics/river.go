package metrics

import (
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// riverEventKinds are the job events that end one run of a job.
var riverEventKinds = []river.EventKind{
	river.EventKindJobCompleted,
	river.EventKindJobFailed,
	river.EventKindJobCancelled,
	river.EventKindJobSnoozed,
	river.EventKindJobInterrupted,
}

// riverEventBuffer is larger than River's default of 1,000 because River's
// completer reports jobs in batches of up to 5,000, and a full buffer drops
// events.
const riverEventBuffer = 10_000

// SubscribeRiver counts the jobs client works (boohpay_river_jobs_worked_total,
// queue wait and run duration) from River's event subscription, until the
// returned stop is called. client must have queues configured (a worker
// client); a client that is never started simply reports nothing.
func (m *Metrics) SubscribeRiver(client *river.Client[pgx.Tx]) (stop func()) {
	events, cancel := client.SubscribeConfig(&river.SubscribeConfig{Kinds: riverEventKinds, ChanSize: riverEventBuffer})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range events {
			m.riverEvent(e)
		}
	}()
	return func() {
		cancel() // closes events
		<-done
	}
}

func (m *Metrics) riverEvent(e *river.Event) {
	if m == nil || e.Job == nil {
		return
	}
	job := e.Job
	m.jobsWorked.WithLabelValues(job.Queue, job.Kind, jobOutcome(e)).Inc()
	if e.JobStats != nil {
		m.jobQueueWait.WithLabelValues(job.Queue, job.Kind).Observe(e.JobStats.QueueWaitDuration.Seconds())
		m.jobRun.WithLabelValues(job.Queue, job.Kind).Observe(e.JobStats.RunDuration.Seconds())
	}
}

// jobOutcome names how one run of a job ended: a failed run is "retryable"
// or, on its last attempt, "discarded".
func jobOutcome(e *river.Event) string {
	switch e.Kind {
	case river.EventKindJobCompleted:
		return "completed"
	case river.EventKindJobCancelled:
		return "cancelled"
	case river.EventKindJobSnoozed:
		return "snoozed"
	case river.EventKindJobInterrupted:
		return "interrupted"
	case river.EventKindJobFailed:
		if e.Job.State == rivertype.JobStateDiscarded {
			return "discarded"
		}
		return "retryable"
	}
	return other
}
