package policies_test

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/policies"
)

// TestRego runs every *_test.rego file against the policies.
func TestRego(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	modules := map[string]*ast.Module{}
	entries, err := policies.FS.ReadDir(".")
	require.NoError(t, err)
	for _, e := range entries {
		b, err := policies.FS.ReadFile(e.Name())
		require.NoError(t, err)
		m, err := ast.ParseModule(e.Name(), string(b))
		require.NoError(t, err)
		modules[e.Name()] = m
	}
	results, err := tester.NewRunner().SetModules(modules).RunTests(ctx, nil)
	require.NoError(t, err)
	n := 0
	for r := range results {
		n++
		if r.Error != nil || r.Fail {
			t.Errorf("%s.%s: fail=%v err=%v", r.Package, r.Name, r.Fail, r.Error)
		}
	}
	require.Greater(t, n, 10, "the Rego tests should have run")
}
