package plugintest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"
)

// vault is a plugin with a secret setting: a route reports the SHA-256 of
// the key it reads, never the key.
type vault struct{ env *sdk.Env }

type vaultConfig struct {
	Label  string `json:"label,omitempty"`
	APIKey string `json:"api_key,omitempty" secret:"true" minLength:"8"`
}

func (v *vault) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name: "vault", Version: "0.1.0",
		Permissions: []sdk.Permission{{Name: "vault.key.check", DefaultRoles: []string{"admin"}}},
		Routes: []sdk.Route{
			{Method: "GET", Path: "/api/v1/vault-key", Permission: "vault.key.check", Handler: v.key},
		},
		Migrations: fstest.MapFS{"0001_init.up.sql": {Data: []byte("CREATE TABLE marks (id int PRIMARY KEY);")}},
		Config:     vaultConfig{Label: "vault"},
	}
}

func (v *vault) Provision(_ context.Context, env *sdk.Env) error { v.env = env; return nil }

func (v *vault) key(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	cfg, err := sdk.Config[vaultConfig](ctx, r)
	if err != nil {
		return nil, err
	}
	raw, _, err := v.env.Host.TenantConfig(ctx, r.Principal.TenantID)
	if err != nil {
		return nil, err
	}
	var host vaultConfig
	if err := json.Unmarshal(raw, &host); err != nil {
		return nil, err
	}
	op, err := sdk.OperatorConfig[vaultConfig](v.env)
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, map[string]string{
		"config": sha(cfg.APIKey), "host": sha(host.APIKey), "operator": sha(op.APIKey),
	})
}

func sha(s string) string {
	if s == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// A secret setting reaches the plugin through SetTenantConfig and
// WithOperatorConfig as any other setting does: the kernel seals it at
// rest, but the plugin sees its configuration the same way.
func TestSecretSettings(t *testing.T) {
	t.Parallel()
	require.NoError(t, plugintest.Check(&vault{}), "a secret setting is nothing the kernel refuses")

	h := plugintest.New(t, &vault{}, plugintest.WithOperatorConfig(json.RawMessage(`{"api_key":"operator-key-1"}`)))
	tenant, other := plugintest.NewTenant(), plugintest.NewTenant()
	h.SetTenantConfig(tenant, json.RawMessage(`{"label":"mine","api_key":"institution-key-1"}`))

	var got map[string]string
	res := h.Do(plugintest.User(tenant, "admin"), "GET", "/api/v1/vault-key", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	res.JSON(t, &got)
	require.Equal(t, map[string]string{"config": sha("institution-key-1"), "host": sha("institution-key-1"), "operator": sha("operator-key-1")}, got)

	res = h.Do(plugintest.User(other, "admin"), "GET", "/api/v1/vault-key", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	res.JSON(t, &got)
	require.Equal(t, sha("operator-key-1"), got["config"], "without its own, the operator's")
	require.Equal(t, "", got["host"])
}
