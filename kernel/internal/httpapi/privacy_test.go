package httpapi_test

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestErasureRetriesUntilThePluginRecovers: a plugin whose erasure fails
// leaves the request incomplete (retrying, its step failed with the
// plugin's error, the kernel's data step not run), and the request
// completes on its own once the plugin recovers.
func TestErasureRetriesUntilThePluginRecovers(t *testing.T) {
	t.Parallel()
	b, _ := withPluginsEnv(t, append([]string{"EDULURE_PRIVACY_MAX_ATTEMPTS", "100"}, fastPrivacy...), pluginBlock{variant: probe})
	a := b.institution("uni")
	b.coolOff(a.admin, 0)
	r := b.do("POST", "/api/v1/probe/notes", a.learner, map[string]any{"body": "Prefers the back row."})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	require.Equal(t, 204, b.do("POST", "/api/v1/probe/personal/fail", a.admin, map[string]any{"fail": true}).Status)

	r = b.do("POST", "/api/v1/tenant/members/"+a.learnerID+"/erasure", a.admin, nil)
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	path := "/api/v1/tenant/erasures/" + r.str("id")
	r = b.waitFor(path, a.admin, "retrying")
	steps := stepStates(r)
	require.Equal(t, "done", steps["kernel:access"])
	require.Equal(t, "failed", steps["plugin:probe"])
	require.Equal(t, "pending", steps["kernel:data"], "the kernel's data waits for every plugin")
	require.Contains(t, string(r.Raw), "told to fail")
	require.Equal(t, 1, b.count("SELECT count(*) FROM plugin_probe.notes WHERE user_id = $1", a.learnerID))

	require.Equal(t, 204, b.do("POST", "/api/v1/probe/personal/fail", a.admin, map[string]any{"fail": false}).Status)
	r = b.waitFor(path, a.admin, "completed")
	for step, state := range stepStates(r) {
		require.Equal(t, "done", state, step)
	}
	require.Equal(t, 0, b.count("SELECT count(*) FROM plugin_probe.notes WHERE user_id = $1", a.learnerID))
	b.verifyChains()
}
