package privacy

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTally: rows and objects are counted per source and class; empty
// classes are not listed; a source with rows, objects or an error makes
// the verification false, and every source asked is listed.
func TestTally(t *testing.T) {
	order := []string{KernelSource, "courses", "probe", "messaging"}
	files := []BundleFile{
		{Path: "kernel/account.jsonl", Source: KernelSource, Class: "account", Table: "users"},
		{Path: "plugins/courses/enrolments.jsonl", Source: "courses", Class: "enrolments", Table: "enrolments"},
		{Path: "plugins/probe/notes.jsonl", Source: "probe", Class: "notes", Table: "notes", Rows: 2},
		{Path: "plugins/probe/objects/notes/x/1.txt", Source: "probe", Class: "notes", Table: "notes", Bytes: 5},
	}
	empty := tally(Verification{}, order[:2], files[:2], map[string]string{})
	require.True(t, empty.VerifiedEmpty)
	require.Len(t, empty.Sources, 2)
	require.Empty(t, empty.Sources[1].Classes)

	v := tally(Verification{}, order, files, map[string]string{"messaging": "plugin unavailable"})
	require.False(t, v.VerifiedEmpty)
	require.Equal(t, []string{"kernel", "courses", "probe", "messaging"}, []string{v.Sources[0].Source, v.Sources[1].Source, v.Sources[2].Source, v.Sources[3].Source})
	require.Equal(t, VerifiedSource{Source: "probe", Rows: 2, Objects: 1, Classes: []VerifiedClass{{Class: "notes", Table: "notes", Rows: 2, Objects: 1}}}, v.Sources[2])
	require.Equal(t, "plugin unavailable", v.Sources[3].Error)
	require.Contains(t, verificationDetail(v), "probe: 2 rows, 1 objects")
	require.Contains(t, verificationDetail(v), "messaging: not checked, plugin unavailable")

	failed := tally(Verification{}, order[:1], nil, map[string]string{KernelSource: "boom"})
	require.False(t, failed.VerifiedEmpty, "a source not checked is not verified")
}
