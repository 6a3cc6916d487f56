package metrics_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/boohpay/boohpay/metrics"
	"github.com/boohpay/boohpay/metrics/metricstest"
)

const deployDir = "../deploy"

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(metricstest.PromtoolPath(t), args...).CombinedOutput()
	require.NoError(t, err, "promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestAlertingRulesCheckAndPassTheirUnitTests(t *testing.T) {
	t.Parallel()
	rules, err := filepath.Glob(filepath.Join(deployDir, "prometheus/rules/*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, rules)
	tests, err := filepath.Glob(filepath.Join(deployDir, "prometheus/tests/*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, tests)
	runPromtool(t, append([]string{"check", "rules"}, rules...)...)
	runPromtool(t, append([]string{"test", "rules"}, tests...)...)
	runPromtool(t, "check", "config", filepath.Join(deployDir, "prometheus/prometheus.yml"))
}

// TestDashboardAndRulesUseOnlyOurMetrics catches a renamed or misspelt
// metric in the dashboard or an alert, which would otherwise show an empty
// panel or never fire.
func TestDashboardAndRulesUseOnlyOurMetrics(t *testing.T) {
	t.Parallel()
	known := exposedNames(t)

	var exprs []string
	raw, err := os.ReadFile(filepath.Join(deployDir, "grafana/dashboards/boohpay.json"))
	require.NoError(t, err)
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &dash))
	require.Equal(t, "boohpay", dash.UID)
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			require.Equal(t, "prometheus", p.Datasource.UID, "panel %q: the provisioned datasource's uid", p.Title)
			exprs = append(exprs, target.Expr)
		}
	}

	rules, err := filepath.Glob(filepath.Join(deployDir, "prometheus/rules/*.yml"))
	require.NoError(t, err)
	for _, path := range rules {
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		var file struct {
			Groups []struct {
				Rules []struct {
					Expr string `yaml:"expr"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		require.NoError(t, yaml.Unmarshal(raw, &file))
		for _, g := range file.Groups {
			for _, r := range g.Rules {
				exprs = append(exprs, r.Expr)
			}
		}
	}

	require.NotEmpty(t, exprs)
	for _, expr := range exprs {
		for _, name := range metricNames(expr) {
			require.True(t, known[name], "%s is not a metric BoohPay exposes (in %q)", name, expr)
		}
	}
}

// exposedNames is every metric name the service exposes once each kind of
// thing has happened, with histograms' _bucket/_sum/_count series.
func exposedNames(t *testing.T) map[string]bool {
	t.Helper()
	b := setup(t, metrics.Config{})
	b.m.HTTPRequest("GET", "/healthz", 200, time.Millisecond)
	b.m.HTTPRequest("GET", "/readyz", 503, time.Millisecond)
	b.m.PaymentCommitted("sandbox", "PENDING", "XAF", 100, true)
	b.m.PayoutCommitted("sandbox", "PENDING")
	b.m.WebhookProvider("stripe", []string{"charge.refunded"})
	b.m.WebhookReceived("stripe", "charge.refunded", "applied")
	b.m.DeliveryAttempt(metrics.DeliverySucceeded, "", time.Millisecond)
	b.m.RiverEvent(&river.Event{Kind: river.EventKindJobCompleted,
		Job:      &rivertype.JobRow{Kind: "webhook_delivery", Queue: "default", State: rivertype.JobStateCompleted},
		JobStats: &river.JobStatistics{QueueWaitDuration: time.Millisecond, RunDuration: time.Millisecond}})
	families, err := b.reg.Gather()
	require.NoError(t, err)
	known := map[string]bool{"up": true} // Prometheus' own, per target
	for _, f := range families {
		name := f.GetName()
		known[name] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				known[name+suffix] = true
			}
		}
	}
	return known
}

var (
	promqlStrings    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promqlMatchers   = regexp.MustCompile(`\{[^}]*\}`)
	promqlGrouping   = regexp.MustCompile(`\b(?:by|without)\s*\([^)]*\)`)
	promqlVariables  = regexp.MustCompile(`\$\w+`)
	promqlRanges     = regexp.MustCompile(`\[[^\]]*\]`)
	promqlIdentifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlFunctions  = map[string]bool{
		"sum": true, "max": true, "min": true, "avg": true, "count": true, "rate": true, "increase": true,
		"delta": true, "deriv": true, "histogram_quantile": true, "and": true, "or": true, "unless": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "offset": true, "bool": true,
		"label_values": true, "abs": true, "clamp_min": true, "time": true, "vector": true, "absent": true,
		"min_over_time": true, "max_over_time": true,
	}
)

// metricNames returns the metric names a PromQL expression selects (strings,
// label matchers, groupings, ranges and variables removed first).
func metricNames(expr string) []string {
	for _, re := range []*regexp.Regexp{promqlStrings, promqlMatchers, promqlGrouping, promqlVariables, promqlRanges} {
		expr = re.ReplaceAllString(expr, " ")
	}
	var names []string
	for _, id := range promqlIdentifier.FindAllString(expr, -1) {
		if !promqlFunctions[id] && !regexp.MustCompile(`^[0-9]`).MatchString(id) {
			names = append(names, id)
		}
	}
	return names
}
