package api

import (
	_ "embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// openAPI documents every route; TestOpenAPIMatchesRoutes keeps it honest.
//
//go:embed openapi.yaml
var openAPI []byte

func handleOpenAPI() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.Blob(http.StatusOK, "application/yaml", openAPI)
	}
}
