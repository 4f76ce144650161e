package privacy_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/dbtest"
	"github.com/edulure/edulure/kernel/internal/privacy"
	"github.com/edulure/edulure/sdk/storage"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// TestKernelDataDescribed is the kernel's own coverage check, the one
// sdk/plugintest applies to plugins: every column of the kernel's schema
// that looks personal is described by a data class of KernelData (or
// listed as not personal), and every class names what exists. A new
// kernel table with a user_id or an email fails here until it is
// described, and so exported and erased.
func TestKernelDataDescribed(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.NewPool(t)
	cat, err := storage.ReadCatalog(context.Background(), pool, "kernel")
	require.NoError(t, err)
	require.NoError(t, storage.CheckPersonalData(cat, privacy.KernelData))
}
