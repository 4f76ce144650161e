package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOpenAPISchema(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{
		`{"type": "object", "properties": {"n": {"type": "integer", "nullable": true}}}`,
		`{"type": "array", "items": {"type": "string", "format": "uuid"}}`,
	} {
		_, err := OpenAPISchema([]byte(ok))
		require.NoError(t, err, ok)
	}
	for _, bad := range []string{
		`{"type": ["integer", "null"]}`, // JSON Schema, not OpenAPI 3.0: use nullable
		`{"type": "null"}`,
		`{"type": "object", "properties": {"n": {"type": "nope"}}}`,
		`[]`, `not json`, ``,
	} {
		_, err := OpenAPISchema([]byte(bad))
		require.Error(t, err, bad)
	}
}
