package governance_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/governance/internal/governance"
)

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }

// inst is an institution with an admin, a compliance officer (a custom
// role holding the plugin's manage permissions), an auditor (read only)
// and a learner (none).
type inst struct {
	id                               string
	admin, officer, auditor, learner sdk.Principal
}

func newInst(t *testing.T) inst {
	t.Helper()
	id := plugintest.NewTenant()
	in := inst{id: id, admin: plugintest.User(id, "admin"), learner: plugintest.User(id, "learner")}
	in.officer = plugintest.User(id, "compliance_officer")
	in.officer.Permissions = governance.ComplianceOfficerPermissions
	in.auditor = plugintest.User(id, "auditor")
	in.auditor.Permissions = governance.AuditorPermissions
	return in
}

func setup(t *testing.T, opts ...plugintest.Option) *plugintest.Harness {
	t.Helper()
	return plugintest.New(t, governance.New(), opts...)
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func ok(t *testing.T, res *plugintest.Result, status int) *plugintest.Result {
	t.Helper()
	require.Equal(t, status, res.Status, res)
	return res
}

func problem(t *testing.T, res *plugintest.Result, status int, code string) {
	t.Helper()
	require.Equal(t, status, res.Status, res)
	require.Equal(t, plugintest.ProblemContentType, res.Header.Get("Content-Type"), res)
	if code != "" {
		require.Equal(t, code, res.Problem().Code, res)
	}
}

func ctx() context.Context { return context.Background() }
