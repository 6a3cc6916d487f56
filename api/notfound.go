package api

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// notFoundOrNotAllowed answers a request no route matched: 405 with Allow
// when its path exists for other methods (a wrong method is not a missing
// resource), else 404. Echo answers 405 by itself only when no catch-all
// matches, and every group with middleware has one.
func notFoundOrNotAllowed(e *echo.Echo) echo.HandlerFunc {
	var once sync.Once
	var routes []methodRoute
	return func(c echo.Context) error {
		once.Do(func() { routes = methodRoutes(e) })
		path := echo.GetPath(c.Request())
		var allow []string
		for _, r := range routes {
			if r.pattern.MatchString(path) && !slices.Contains(allow, r.method) {
				allow = append(allow, r.method)
			}
		}
		if len(allow) == 0 {
			return echo.ErrNotFound
		}
		slices.Sort(allow)
		c.Response().Header().Set("Allow", strings.Join(allow, ", "))
		return echo.NewHTTPError(http.StatusMethodNotAllowed,
			fmt.Sprintf("%s is not allowed here; allowed: %s", c.Request().Method, strings.Join(allow, ", ")))
	}
}

type methodRoute struct {
	method  string
	pattern *regexp.Regexp
}

var routeParam = regexp.MustCompile(`:[^/]+`)

// methodRoutes turns the registered routes into patterns over request paths
// (":id" is one segment, "*" anything).
func methodRoutes(e *echo.Echo) []methodRoute {
	var out []methodRoute
	for _, r := range e.Routes() {
		if r.Method == echo.RouteNotFound || r.Method == "" {
			continue
		}
		expr := regexp.QuoteMeta(r.Path)
		expr = routeParam.ReplaceAllStringFunc(expr, func(string) string { return `[^/]+` })
		expr = strings.ReplaceAll(expr, `\*`, `.*`)
		out = append(out, methodRoute{r.Method, regexp.MustCompile("^" + expr + "$")})
	}
	return out
}
