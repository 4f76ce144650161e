package bench

import (
	"context"

	"github.com/labstack/echo/v4"
)

// dbReadRows measures the courses plugin's learner dashboard.
func (e *env) dbReadRows(ctx context.Context) ([]Row, error) {
	if e.courses == nil {
		e.printf("  the courses plugin is not built: http.plugin_db_read skipped")
		return nil, nil
	}
	return nil, nil
}

type dashboardHandler struct{}

func newDashboardHandler(ctx context.Context, dbURL string) (*dashboardHandler, error) {
	return &dashboardHandler{}, nil
}

func (h *dashboardHandler) serve(c echo.Context) error { return nil }
