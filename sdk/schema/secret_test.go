package schema

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// secret:"true" is writeOnly, as writeOnly:"true" is.
func TestSecretTag(t *testing.T) {
	t.Parallel()
	type settings struct {
		Key   string  `json:"key" secret:"true" minLength:"8"`
		Token *string `json:"token" writeOnly:"true"`
		Label string  `json:"label" secret:"false"`
	}
	ref, err := NewInlineGenerator().Schema(settings{})
	require.NoError(t, err)
	var root map[string]any
	b, _ := json.Marshal(ref)
	require.NoError(t, json.Unmarshal(b, &root))
	props := root["properties"].(map[string]any)
	require.Equal(t, true, props["key"].(map[string]any)["writeOnly"])
	require.Equal(t, float64(8), props["key"].(map[string]any)["minLength"])
	require.Equal(t, true, props["token"].(map[string]any)["writeOnly"])
	require.Nil(t, props["label"].(map[string]any)["writeOnly"])
}
