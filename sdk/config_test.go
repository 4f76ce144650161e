package sdk

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/wire"
)

type paymentSettings struct {
	Currency  string       `json:"currency" enum:"EUR,USD"`
	StripeKey string       `json:"stripe_key,omitempty" secret:"true" pattern:"^sk_"`
	SMTP      smtpSettings `json:"smtp"`
}

type smtpSettings struct {
	Host     string `json:"host"`
	Password string `json:"password,omitempty" writeOnly:"true"`
}

// A secret setting is writeOnly in the configuration's schema, without its
// default: the schema is shown to every institution's admins.
func TestConfigSchemaSecrets(t *testing.T) {
	t.Parallel()
	c, err := compileManifest(Manifest{
		Name: "pay", Version: "1.0.0",
		Config: paymentSettings{Currency: "EUR", StripeKey: "sk_test_default", SMTP: smtpSettings{Host: "mail", Password: "dev-password"}},
	})
	require.NoError(t, err)
	js := c.wire.ConfigSchemaJson
	require.NotContains(t, string(js), "sk_test_default")
	require.NotContains(t, string(js), "dev-password")
	var doc struct {
		Properties map[string]map[string]any `json:"properties"`
	}
	require.NoError(t, json.Unmarshal(js, &doc))
	require.Equal(t, true, doc.Properties["stripe_key"]["writeOnly"])
	require.Equal(t, "^sk_", doc.Properties["stripe_key"]["pattern"])
	require.Equal(t, "EUR", doc.Properties["currency"]["default"], "other settings keep their default")
	require.Equal(t, []string{"smtp", "stripe_key"}, wire.ConfigSecrets(js), "a setting holding a secret is one as a whole")
	// The plugin still reads its defaults.
	var v paymentSettings
	require.NoError(t, layer(&v, c.configBase))
	require.Equal(t, "sk_test_default", v.StripeKey)
}

// A configuration that does not decode is refused without its value: it
// may be a secret.
func TestConfigErrorsHoldNoValue(t *testing.T) {
	t.Parallel()
	var v struct {
		PIN string `json:"pin"`
	}
	err := layer(&v, []byte(`{"pin": 918273645}`))
	require.Error(t, err)
	require.NotContains(t, err.Error(), "918273645")
	require.Contains(t, err.Error(), "pin")
}
