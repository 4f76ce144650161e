package telemetry_test

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/telemetry/internal/telemetry"
)

// The helpers the package's tests share: the harness, an institution with
// its people and a policy, statements, and requests.

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }

const home = "https://edulure.dev"

func setup(t *testing.T, opts ...plugintest.Option) *plugintest.Harness {
	t.Helper()
	return plugintest.New(t, telemetry.New(), opts...)
}

// inst is an institution with an admin, two learners and an analytics
// policy (version 1).
type inst struct {
	id              string
	admin           sdk.Principal
	learner, other  sdk.Principal
	analyticsPolicy int
}

func newInst(t *testing.T, h *plugintest.Harness) inst {
	t.Helper()
	id := plugintest.NewTenant()
	in := inst{id: id, admin: plugintest.User(id, "admin"), learner: plugintest.User(id, "learner"), other: plugintest.User(id, "learner")}
	in.analyticsPolicy = publishPolicy(t, h, in.admin, "analytics")
	return in
}

func publishPolicy(t *testing.T, h *plugintest.Harness, admin sdk.Principal, purpose string) int {
	t.Helper()
	res := h.Do(admin, "POST", "/api/v1/telemetry/policies", map[string]any{"purpose": purpose, "summary": "We use your learning activity to improve courses."})
	require.Equal(t, 201, res.Status, res)
	var p telemetry.Policy
	res.JSON(t, &p)
	return p.Version
}

// decide records p's own decision.
func decide(t *testing.T, h *plugintest.Harness, p sdk.Principal, purpose string, version int, granted bool) telemetry.Decision {
	t.Helper()
	res := h.Do(p, "POST", "/api/v1/telemetry/consents", map[string]any{"purpose": purpose, "policy_version": version, "granted": granted})
	require.Equal(t, 201, res.Status, res)
	var d telemetry.Decision
	res.JSON(t, &d)
	return d
}

// stmt is a valid statement by user at ts, with a new id; fields of extra
// replace the defaults.
func stmt(user string, ts time.Time, extra ...map[string]any) map[string]any {
	s := map[string]any{
		"id":        plugintest.NewID(),
		"actor":     map[string]any{"objectType": "Agent", "account": map[string]any{"homePage": home, "name": user}},
		"verb":      map[string]any{"id": telemetry.VerbCompleted, "display": map[string]any{"en-US": "completed"}},
		"object":    map[string]any{"objectType": "Activity", "id": "https://edulure.dev/xapi/activities/lessons/" + plugintest.NewID(), "definition": map[string]any{"type": telemetry.ActivityLesson}},
		"timestamp": ts.UTC().Format(time.RFC3339Nano),
	}
	for _, e := range extra {
		for k, v := range e {
			s[k] = v
		}
	}
	return s
}

// ingest sends a batch and requires a 200.
func ingest(t *testing.T, h *plugintest.Harness, p sdk.Principal, statements ...map[string]any) telemetry.IngestResult {
	t.Helper()
	return ingestBody(t, h, p, map[string]any{"statements": statements})
}

func ingestBody(t *testing.T, h *plugintest.Harness, p sdk.Principal, body map[string]any) telemetry.IngestResult {
	t.Helper()
	res := h.Do(p, "POST", "/api/v1/telemetry/events", body)
	require.Equal(t, 200, res.Status, res)
	var out telemetry.IngestResult
	res.JSON(t, &out)
	return out
}

// statuses are the results' statuses and reasons, "stored" or
// "refused:no_consent".
func statuses(r telemetry.IngestResult) []string {
	out := make([]string, len(r.Results))
	for i, x := range r.Results {
		out[i] = x.Status
		if x.Reason != "" {
			out[i] += ":" + x.Reason
		}
	}
	return out
}

// countIn counts as the plugin, in an institution.
func countIn(t *testing.T, h *plugintest.Harness, tenant, q string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error { return tx.QueryRow(t.Context(), q, args...).Scan(&n) }))
	return n
}

// rawOf is a stored statement's raw JSON.
func rawOf(t *testing.T, h *plugintest.Harness, tenant, id string) map[string]any {
	t.Helper()
	var raw []byte
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error {
		return tx.QueryRow(t.Context(), `SELECT raw FROM statements WHERE id = $1`, id).Scan(&raw)
	}))
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}
