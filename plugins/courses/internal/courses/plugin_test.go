package courses_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

func TestManifestLoadsAndMigrates(t *testing.T) {
	t.Parallel()
	m := courses.New().Manifest()
	err := plugintest.Check(courses.New())
	require.NoError(t, err)
	require.Equal(t, "courses", m.Name)
	h := setup(t)
	var tables int
	require.NoError(t, h.DB().QueryRow(t.Context(), `
		SELECT count(*) FROM pg_tables WHERE schemaname = 'plugin_courses' AND rowsecurity`).Scan(&tables))
	require.GreaterOrEqual(t, tables, 15, "every tenant-scoped table is under row-level security")
}
