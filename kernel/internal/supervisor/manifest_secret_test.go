package supervisor

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A secret setting written as a value in plugins.hcl is refused at its
// line, without repeating it; given by env() or file() it loads. (Not
// parallel: t.Setenv.)
func TestValidateManifestSecretSettings(t *testing.T) {
	t.Setenv("EDULURE_TEST_QUIZ_KEY", "sk_from_env_12345")
	m := goodManifest()
	m.ConfigSchemaJson = []byte(`{"type":"object","additionalProperties":false,"properties":{
		"label":{"type":"string"},
		"api_key":{"type":"string","writeOnly":true,"minLength":8}}}`)
	known := func(string) bool { return true }
	parse := func(config string) PluginConfig {
		t.Helper()
		src := "plugin \"quiz\" {\n  path    = \"quiz\"\n  version = \"1.0.0\"\n  sha256  = \"" +
			"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + "\"\n  config  = " + config + "\n}\n"
		cfg, err := ParseConfig([]byte(src), "plugins.hcl")
		require.NoError(t, err)
		return cfg.Plugins[0]
	}

	out, err := validateManifest(m, parse(`{ label = "x", api_key = env("EDULURE_TEST_QUIZ_KEY") }`), 1, nil, known)
	require.NoError(t, err)
	require.Equal(t, []string{"api_key"}, out.Secrets)
	_, err = validateManifest(m, parse(`{ label = "x" }`), 1, nil, known)
	require.NoError(t, err, "a secret may be left unset")

	_, err = validateManifest(m, parse("{\n    label   = \"x\"\n    api_key = \"sk_literal_value\"\n  }"), 1, nil, known)
	require.Error(t, err)
	require.Contains(t, err.Error(), `plugins.hcl:7,5: config.api_key: is a secret setting: write env("VARIABLE") or file("/path/to/secret") instead of its value`)
	require.NotContains(t, err.Error(), "sk_literal_value")

	// A schema violation of a secret names the setting, not the value.
	t.Setenv("EDULURE_TEST_QUIZ_KEY", "short")
	_, err = validateManifest(m, parse(`{ api_key = env("EDULURE_TEST_QUIZ_KEY") }`), 1, nil, known)
	require.ErrorContains(t, err, "config.api_key: must be at least 8 characters long")
	require.NotContains(t, err.Error(), "short")
}
