package governance_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/plugins/governance/internal/governance"
)

var update = flag.Bool("update", false, "rewrite ../../policies/data.json from the manifest")

// policyData is the file of OPA data the Rego tests run with: the default
// grants the manifest declares, as the kernel loads them. It is committed
// so that the stock OPA CLI runs the tests too:
//
//	opa test policies/ plugins/governance/policies/
const policyData = "../../policies/data.json"

// manifestPolicyData builds that data from the manifest.
func manifestPolicyData(t *testing.T) []byte {
	t.Helper()
	defaults := map[string]map[string]bool{}
	for _, p := range governance.New().Manifest().Permissions {
		for _, role := range p.DefaultRoles {
			if defaults[role] == nil {
				defaults[role] = map[string]bool{}
			}
			defaults[role][p.Name] = true
		}
	}
	out, err := json.MarshalIndent(map[string]any{"edulure": map[string]any{"defaults": defaults, "tenants": map[string]any{}}}, "", "  ")
	require.NoError(t, err)
	return append(out, '\n')
}

// The committed data file says what the manifest says: a change to a
// permission's DefaultRoles fails here until `go test ./internal/governance
// -run TestPolicyDataCurrent -update` rewrites it.
func TestPolicyDataCurrent(t *testing.T) {
	t.Parallel()
	want := manifestPolicyData(t)
	if *update {
		require.NoError(t, os.WriteFile(policyData, want, 0o644))
	}
	got, err := os.ReadFile(policyData)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "%s is stale: run go test ./internal/governance -run TestPolicyDataCurrent -update", policyData)
}

// TestPolicies runs the Rego tests of ../../policies against the kernel's
// access policy (the repository's policies/authz.rego), with the data of
// policies/data.json (checked against the manifest by
// TestPolicyDataCurrent), as `opa test` runs them.
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
	raw, err := os.ReadFile(policyData)
	require.NoError(t, err)
	var data map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&data))
	results, err := tester.NewRunner().SetStore(inmem.NewFromObject(data)).SetModules(modules).RunTests(t.Context(), nil)
	require.NoError(t, err)
	n := 0
	for r := range results {
		n++
		if r.Error != nil || r.Fail {
			t.Errorf("%s.%s: fail=%v err=%v", r.Package, r.Name, r.Fail, r.Error)
		}
	}
	require.GreaterOrEqual(t, n, 7, "the Rego tests should have run")
}
