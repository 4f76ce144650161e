package wire

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestConfigSecrets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, schema string
		want         []string
	}{
		{name: "none", schema: `{"type":"object","properties":{"label":{"type":"string"}}}`},
		{name: "not JSON", schema: `{`},
		{name: "top level", schema: `{"type":"object","properties":{"label":{"type":"string"},"key":{"type":"string","writeOnly":true},"b":{"writeOnly":false}}}`, want: []string{"key"}},
		{name: "nested", schema: `{"type":"object","properties":{"smtp":{"type":"object","properties":{"host":{"type":"string"},"password":{"type":"string","writeOnly":true}}}}}`, want: []string{"smtp"}},
		{name: "nullable", schema: `{"type":"object","properties":{"key":{"anyOf":[{"type":"null"},{"type":"string","writeOnly":true}]}}}`, want: []string{"key"}},
		{name: "reference", schema: `{"type":"object","properties":{"a":{"$ref":"#/$defs/s"},"b":{"$ref":"#/$defs/p"}},"$defs":{"s":{"type":"string","writeOnly":true},"p":{"type":"string"}}}`, want: []string{"a"}},
		{name: "recursive reference", schema: `{"type":"object","properties":{"a":{"$ref":"#/$defs/n"}},"$defs":{"n":{"type":"object","properties":{"next":{"$ref":"#/$defs/n"}}}}}`},
		{name: "allOf", schema: `{"allOf":[{"properties":{"k":{"writeOnly":true}}}]}`, want: []string{"k"}},
		{name: "a value is not a schema", schema: `{"type":"object","properties":{"k":{"default":{"writeOnly":true}}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, ConfigSecrets([]byte(tc.schema)))
		})
	}
}
