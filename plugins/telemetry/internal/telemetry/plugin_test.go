package telemetry_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/telemetry/internal/telemetry"
)

// The kernel would load the manifest: names, routes, schemas, jobs.
func TestManifest(t *testing.T) {
	t.Parallel()
	require.NoError(t, plugintest.Check(telemetry.New()))
}

// The harness provisions the plugin as the kernel does, and its coverage
// check finds every personal column described.
func TestProvision(t *testing.T) {
	t.Parallel()
	plugintest.New(t, telemetry.New())
}
