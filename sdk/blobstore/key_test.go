package blobstore_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/blobstore"
	"github.com/edulure/edulure/sdk/blobstore/blobstoretest"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	const tenant = "0192f000-0000-7000-8000-00000000000a"
	ts, err := blobstore.TenantScope("courses", tenant)
	require.NoError(t, err)
	ps, err := blobstore.PlatformScope("courses")
	require.NoError(t, err)
	for _, s := range []blobstore.Scope{ts, ps} {
		full, err := s.Key("lessons/1/a.pdf")
		require.NoError(t, err)
		got, key, ok := blobstore.ParseKey(full)
		require.True(t, ok, full)
		require.Equal(t, s, got)
		require.Equal(t, "lessons/1/a.pdf", key)
	}
	require.Equal(t, "plugins/courses/tenants/"+tenant+"/", ts.Prefix())
	require.Equal(t, "plugins/courses/platform/", ps.Prefix())
	for _, bad := range []string{
		"kernel/exports/x",
		"plugins/courses/tenants/0192F000-0000-7000-8000-00000000000A/x", // not the kernel's spelling
		"plugins/courses/tenants/" + tenant,
		"plugins/courses/tenants/" + tenant + "/",
		"plugins/courses/tenants/" + tenant + "/../x",
		"plugins/courses/other/x",
		"plugins/Courses/platform/x",
		"plugins/courses/platform/a//b",
	} {
		_, _, ok := blobstore.ParseKey(bad)
		require.False(t, ok, bad)
	}
	for name, key := range blobstoretest.HostileKeys {
		require.Error(t, blobstore.CheckKey(key), name)
	}
}
