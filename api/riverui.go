package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"riverqueue.com/riverui"
)

// riverUIPrefix is where the River UI lives; addRoutes mounts it there,
// behind the admin guard.
const riverUIPrefix = "/admin/river"

// NewRiverUI returns River's web UI and its JSON API (riverqueue.com/riverui)
// for client, serving under /admin/river/, its background count caches
// running until ctx ends. Pass it as Config.RiverUI. The client need not be
// started: the UI reads and changes river_job through it (ROLE=api works).
func NewRiverUI(ctx context.Context, client *river.Client[pgx.Tx], log *slog.Logger) (http.Handler, error) {
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(client, nil),
		Logger:    log,
		Prefix:    riverUIPrefix,
	})
	if err != nil {
		return nil, fmt.Errorf("creating river ui: %w", err)
	}
	if err := h.Start(ctx); err != nil {
		return nil, fmt.Errorf("starting river ui: %w", err)
	}
	return h, nil
}
