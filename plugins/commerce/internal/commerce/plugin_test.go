package commerce_test

import (
	"testing"

	"github.com/edulure/edulure/sdk/plugintest"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/plugins/commerce/internal/commerce"
)

// The kernel would load the manifest: names, routes, schemas, events, the
// job, personal data.
func TestManifest(t *testing.T) {
	t.Parallel()
	require.NoError(t, plugintest.Check(commerce.New()))
}
