package httpapi_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// httpSeries lists the kernel's HTTP metric series in a /metrics scrape.
func (b *testBundle) httpSeries() []string {
	b.t.Helper()
	r := b.do("GET", "/metrics", "", nil)
	require.Equal(b.t, 200, r.Status)
	var out []string
	for _, line := range strings.Split(string(r.Raw), "\n") {
		if strings.HasPrefix(line, "edulure_http_") {
			series, _, _ := strings.Cut(line, "} ")
			out = append(out, series+"}")
		}
	}
	return out
}

// TestMetricsCardinalityIsBounded: made-up methods and paths are labelled
// with one bounded value each (method "OTHER", route "unmatched"), so junk
// traffic cannot grow /metrics without bound.
func TestMetricsCardinalityIsBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	junk := func(i int) {
		method := fmt.Sprintf("ZZSEC%d", i)
		for _, path := range []string{"/healthz", fmt.Sprintf("/junk/%d", i), fmt.Sprintf("/api/v1/junk%d", i), fmt.Sprintf("/api/v1/tenant/members/%d", i)} {
			r := b.do(method, path, "", nil)
			require.GreaterOrEqual(t, r.Status, 400, "%s %s: %s", method, path, r.Raw)
			require.Less(t, r.Status, 500, "%s %s: %s", method, path, r.Raw)
		}
		r := b.do("GET", fmt.Sprintf("/no/such/route/%d", i), "", nil)
		require.Equal(t, 404, r.Status)
	}
	junk(0) // the bounded series exist from the first junk request on
	b.httpSeries()
	before := b.httpSeries()
	for i := 1; i <= 1000; i += 5 {
		junk(i) // 5 requests each: 1,000 in all
	}
	after := b.httpSeries()
	require.ElementsMatch(t, before, after, "junk requests added series")
	all := strings.Join(after, "\n")
	require.NotContains(t, all, "ZZSEC")
	require.NotContains(t, all, "junk")
	require.Contains(t, all, `method="OTHER"`)
	require.Contains(t, all, `route="unmatched"`)
}
