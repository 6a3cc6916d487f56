package api

import (
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/boohpay/boohpay/metrics"
)

// routeUnmatched is the route label of every request that matched no route:
// 404s for arbitrary paths share one series instead of one per path.
const routeUnmatched = "unmatched"

// recordRequests feeds http_request_duration_seconds, http_requests_total and
// http_request_errors_total, labelled with the route template
// ("/v1/payments/:id"). It sits outside the request logger, which has
// already written any error response, so the status is the one sent.
func recordRequests(m *metrics.Metrics, e *echo.Echo) echo.MiddlewareFunc {
	var once sync.Once
	var routes map[string]bool
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil && !c.Response().Committed {
				c.Error(err)
			}
			once.Do(func() { routes = routeTemplates(e) })
			route := c.Path()
			if !routes[route] {
				route = routeUnmatched
			}
			m.HTTPRequest(c.Request().Method, route, c.Response().Status, time.Since(start))
			return err
		}
	}
}

// routeTemplates is the set of paths registered for a real method. Echo also
// sets c.Path() for requests no route matched (to a group's catch-all or a
// prefix of the tree), which must not count as a route.
func routeTemplates(e *echo.Echo) map[string]bool {
	routes := map[string]bool{}
	for _, r := range e.Routes() {
		if r.Method != echo.RouteNotFound {
			routes[r.Path] = true
		}
	}
	return routes
}

// initRouteMetrics starts every route's HTTP series at zero.
func initRouteMetrics(m *metrics.Metrics, e *echo.Echo) {
	var routes [][2]string
	for _, r := range e.Routes() {
		if r.Method != echo.RouteNotFound && r.Method != "" && !strings.Contains(r.Path, "*") {
			routes = append(routes, [2]string{r.Method, r.Path})
		}
	}
	m.InitRoutes(routes)
}

// handleMetrics serves GET /metrics from the service's own registry.
func handleMetrics(m *metrics.Metrics) echo.HandlerFunc {
	return echo.WrapHandler(m.Handler())
}
