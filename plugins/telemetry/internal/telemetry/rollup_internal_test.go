package telemetry

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Queued hours are read in runs without a gap of more than a day.
func TestRuns(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	require.Equal(t, [][]time.Time{{h(0)}}, runs([]time.Time{h(0)}))
	require.Equal(t, [][]time.Time{{h(0), h(1), h(24), h(30)}}, runs([]time.Time{h(0), h(1), h(24), h(30)}))
	require.Equal(t, [][]time.Time{{h(0), h(1)}, {h(26)}, {h(24 * 30)}}, runs([]time.Time{h(0), h(1), h(26), h(24 * 30)}))
}
