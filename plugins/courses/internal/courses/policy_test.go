package courses_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

// TestPolicies runs the Rego tests of ../../policies against the kernel's
// access policy (the repository's policies/authz.rego), with the default
// grants the manifest declares as the kernel loads them: a change to a
// permission's DefaultRoles that breaks an expectation fails here.
func TestPolicies(t *testing.T) {
	t.Parallel()
	modules := map[string]*ast.Module{}
	files, err := filepath.Glob("../../policies/*.rego")
	require.NoError(t, err)
	files = append(files, "../../../../policies/authz.rego")
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		m, err := ast.ParseModule(f, string(b))
		require.NoError(t, err)
		modules[f] = m
	}
	defaults := map[string]any{}
	for _, p := range courses.New().Manifest().Permissions {
		for _, role := range p.DefaultRoles {
			grants, _ := defaults[role].(map[string]any)
			if grants == nil {
				grants = map[string]any{}
				defaults[role] = grants
			}
			grants[p.Name] = true
		}
	}
	store := inmem.NewFromObject(map[string]any{"edulure": map[string]any{"defaults": defaults, "tenants": map[string]any{}}})
	results, err := tester.NewRunner().SetStore(store).SetModules(modules).RunTests(t.Context(), nil)
	require.NoError(t, err)
	n := 0
	for r := range results {
		n++
		if r.Error != nil || r.Fail {
			t.Errorf("%s.%s: fail=%v err=%v", r.Package, r.Name, r.Fail, r.Error)
		}
	}
	require.GreaterOrEqual(t, n, 9, "the Rego tests should have run")
}
