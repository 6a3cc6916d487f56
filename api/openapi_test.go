package api_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"

	"github.com/boohpay/boohpay/api"
	"github.com/boohpay/boohpay/db/dbtest"
)

var echoParam = regexp.MustCompile(`:([a-z_]+)`)

// TestOpenAPIMatchesRoutes compares the document's operations with the
// routes Echo registered, both ways.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	e := api.NewServer(api.Config{RiverUI: http.NotFoundHandler()}, slog.New(slog.NewTextHandler(io.Discard, nil)), dbtest.Store(t), nil)

	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.yaml", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var doc struct {
		OpenAPI string                            `yaml:"openapi"`
		Paths   map[string]map[string]interface{} `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(rec.Body.Bytes(), &doc))
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."))

	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	var registered []string
	seen := map[string]bool{}
	for _, r := range e.Routes() {
		// Echo's own catch-alls (group 404s, RouteNotFound) and the River UI's
		// mount (a whole application under one prefix) are not operations.
		if r.Method == "echo_route_not_found" || strings.HasSuffix(r.Path, "*") || r.Path == "/v1" ||
			strings.HasPrefix(r.Path, "/admin/river") {
			continue
		}
		op := r.Method + " " + echoParam.ReplaceAllString(r.Path, "{$1}")
		if !seen[op] {
			seen[op] = true
			registered = append(registered, op)
		}
	}
	sort.Strings(documented)
	sort.Strings(registered)
	require.Equal(t, documented, registered)
}
