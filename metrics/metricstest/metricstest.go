// Package metricstest checks an exposition against the metrics the service
// promises (the old service's names, which dashboards and alerts use): every
// metric with its type and exact label names, no id-like label value, and
// `promtool check metrics`.
package metricstest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metric is one promised metric's type and label names.
type Metric struct {
	Type   dto.MetricType
	Labels []string // sorted
}

// Promised are the metrics whose names, types and label names are fixed:
// dashboards and alerts outside this repository read them.
var Promised = map[string]Metric{
	"http_request_duration_seconds":     {dto.MetricType_HISTOGRAM, []string{"method", "route", "status"}},
	"http_requests_total":               {dto.MetricType_COUNTER, []string{"method", "route", "status"}},
	"http_request_errors_total":         {dto.MetricType_COUNTER, []string{"method", "route", "status"}},
	"payments_total":                    {dto.MetricType_COUNTER, []string{"gateway", "status"}},
	"payments_by_gateway_total":         {dto.MetricType_COUNTER, []string{"gateway"}},
	"payments_by_status_total":          {dto.MetricType_COUNTER, []string{"status"}},
	"payment_amount":                    {dto.MetricType_HISTOGRAM, []string{"currency", "gateway"}},
	"payouts_total":                     {dto.MetricType_COUNTER, []string{"provider", "status"}},
	"payouts_by_status_total":           {dto.MetricType_COUNTER, []string{"status"}},
	"webhooks_received_total":           {dto.MetricType_COUNTER, []string{"provider", "result", "type"}},
	"webhook_deliveries_total":          {dto.MetricType_COUNTER, []string{"status"}},
	"webhook_delivery_errors_total":     {dto.MetricType_COUNTER, []string{"reason"}},
	"webhook_delivery_duration_seconds": {dto.MetricType_HISTOGRAM, []string{"status"}},
	"active_connections":                {dto.MetricType_GAUGE, nil},
	"queue_size":                        {dto.MetricType_GAUGE, []string{"queue", "state"}},
}

// Parse reads a text exposition.
func Parse(t testing.TB, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("parsing exposition: %v", err)
	}
	return families
}

// RequirePromised fails t unless every Promised metric is in families, with at
// least one series, its type, and on each series exactly its label names.
func RequirePromised(t testing.TB, families map[string]*dto.MetricFamily) {
	t.Helper()
	for _, name := range sortedKeys(Promised) {
		want := Promised[name]
		f, ok := families[name]
		if !ok || len(f.GetMetric()) == 0 {
			t.Errorf("%s: missing", name)
			continue
		}
		if f.GetType() != want.Type {
			t.Errorf("%s: type %s, want %s", name, f.GetType(), want.Type)
		}
		for _, m := range f.GetMetric() {
			if got := labelNames(m); !slices.Equal(got, want.Labels) {
				t.Errorf("%s: labels %v, want %v", name, got, want.Labels)
				break
			}
		}
	}
}

var (
	uuidLike = regexp.MustCompile(`(?i)[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}`)
	hexRun   = regexp.MustCompile(`(?i)[0-9a-f]{16,}`)
	numeric  = regexp.MustCompile(`^[0-9.eE+-]+$`)
	httpCode = regexp.MustCompile(`^[1-5][0-9][0-9]$`)
)

// RequireNoIDLabels fails t if any label value anywhere looks like an id: a
// UUID, a long hex run, or a number (except histogram/summary bounds and an
// HTTP status code in "status").
func RequireNoIDLabels(t testing.TB, families map[string]*dto.MetricFamily) {
	t.Helper()
	for _, name := range sortedKeys(families) {
		for _, m := range families[name].GetMetric() {
			for _, l := range m.GetLabel() {
				v := l.GetValue()
				switch {
				case uuidLike.MatchString(v), hexRun.MatchString(v):
					t.Errorf("%s{%s=%q}: an id is not a label", name, l.GetName(), v)
				case numeric.MatchString(v) && !(l.GetName() == "status" && httpCode.MatchString(v)) &&
					l.GetName() != "le" && l.GetName() != "quantile":
					t.Errorf("%s{%s=%q}: a number is not a label", name, l.GetName(), v)
				}
			}
		}
	}
}

// PromtoolPath returns promtool's path: the pinned build scripts/test-tools.sh
// makes (scripts/test.sh puts it first on PATH), or any other on PATH.
// Without one the test is skipped, except under CI=true, where it fails.
func PromtoolPath(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		const msg = "promtool not found: run scripts/test-tools.sh (it builds the pinned promtool into .data/tools/bin) and put that directory on PATH, or use make test"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// Promtool runs `promtool check metrics` on text (see PromtoolPath).
func Promtool(t testing.TB, text []byte) {
	t.Helper()
	path := PromtoolPath(t)
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Fatalf("promtool check metrics:\n%s", out)
	}
	if err != nil {
		t.Fatalf("running promtool: %v", err)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Logf("promtool check metrics: %s", s)
	}
}

func labelNames(m *dto.Metric) []string {
	var names []string
	for _, l := range m.GetLabel() {
		names = append(names, l.GetName())
	}
	sort.Strings(names)
	return names
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
