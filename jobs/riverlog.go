package jobs

import (
	"context"
	"log/slog"
	"strings"

	"github.com/boohpay/boohpay/db"
)

// riverLogHandler passes River's own log lines on, demoting its routine ones
// to debug: the producers' job counts (every few seconds while jobs run: a
// quarter of all lines at info), and a delivery job's error, which repeats
// the "webhook attempt" line the delivery worker already logs for every
// attempt, with the status, reason and duration.
type riverLogHandler struct {
	slog.Handler
	deliveryJob bool // an attribute added With job_kind=webhook_delivery
}

func newRiverLogger(log *slog.Logger) *slog.Logger {
	return slog.New(riverLogHandler{Handler: log.Handler()})
}

func (h riverLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level > slog.LevelDebug && h.routine(r) {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h riverLogHandler) routine(r slog.Record) bool {
	if strings.HasSuffix(r.Message, ": Producer job counts") {
		return true
	}
	if !strings.HasSuffix(r.Message, ": Job errored") && !strings.HasSuffix(r.Message, ": Job errored; retrying") {
		return false
	}
	delivery := h.deliveryJob
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "job_kind" && a.Value.String() == (db.DeliveryArgs{}).Kind() {
			delivery = true
			return false
		}
		return true
	})
	return delivery
}

func (h riverLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	delivery := h.deliveryJob
	for _, a := range attrs {
		if a.Key == "job_kind" && a.Value.String() == (db.DeliveryArgs{}).Kind() {
			delivery = true
		}
	}
	return riverLogHandler{Handler: h.Handler.WithAttrs(attrs), deliveryJob: delivery}
}

func (h riverLogHandler) WithGroup(name string) slog.Handler {
	return riverLogHandler{Handler: h.Handler.WithGroup(name), deliveryJob: h.deliveryJob}
}
