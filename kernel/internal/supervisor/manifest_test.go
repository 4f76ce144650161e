package supervisor

import (
	"testing"

	"github.com/stretchr/testify/require"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/wire"
)

func goodManifest() *pluginv1.Manifest {
	return &pluginv1.Manifest{
		Name: "quiz", Version: "1.0.0", MinProtocol: 1, MaxProtocol: 1,
		Permissions: []*pluginv1.Permission{{Name: "quiz.quiz.read", DefaultRoles: []string{"learner"}}},
		Routes: []*pluginv1.Route{
			{Method: "GET", Path: "/api/v1/quizzes/{quiz_id}", Permission: "quiz.quiz.read"},
			{Method: "GET", Path: "/api/v1/quizzes", Permission: "tenancy.settings.read"},
		},
		Publishes:  []*pluginv1.EventType{{Type: "quiz.attempt.finished.v1", SchemaJson: []byte(`{"type":"object"}`)}},
		Subscribes: []string{"courses.lesson.completed.v1"},
		Jobs:       []*pluginv1.Job{{Name: "grade", Schedule: "*/5 * * * *"}},
		Migrations: []*pluginv1.Migration{{Version: 1, Name: "init", Sql: "SELECT 1"}},
	}
}

// The kernel refuses a manifest that breaks its rules, and says why.
func TestValidateManifest(t *testing.T) {
	t.Parallel()
	cfg := PluginConfig{Name: "quiz", Version: "1.0.0"}
	known := func(p string) bool { return p == "tenancy.settings.read" }
	otherPath, err := wire.ParsePath("/api/v1/exams/{id}")
	require.NoError(t, err)
	others := map[string][]*Route{"exams": {{Route: &pluginv1.Route{Method: "GET"}, Key: "GET /api/v1/exams/{id}", Path: otherPath}}}

	good := goodManifest()
	good.Capabilities = []string{"storage", "platform_storage"}
	m, err := validateManifest(good, cfg, 1, others, known)
	require.NoError(t, err)
	require.Len(t, m.Routes, 2)
	require.Len(t, m.Migrations, 1)

	tests := []struct {
		name   string
		change func(*pluginv1.Manifest)
		proto  int
		want   string
	}{
		{name: "name mismatch", change: func(m *pluginv1.Manifest) { m.Name = "quizz" }, want: `lists it as "quiz"`},
		{name: "version mismatch", change: func(m *pluginv1.Manifest) { m.Version = "2.0.0" }, want: `expects "1.0.0"`},
		{name: "protocol out of range", change: func(m *pluginv1.Manifest) { m.MinProtocol, m.MaxProtocol = 2, 3 }, want: "needs kernel protocol 2..3"},
		{name: "kernel prefix", change: func(m *pluginv1.Manifest) { m.Routes[0].Path = "/api/v1/tenant/quiz" }, want: "reserved for the kernel"},
		{name: "malformed path", change: func(m *pluginv1.Manifest) { m.Routes[0].Path = "/api/v1/Quizzes//x" }, want: "must be lowercase letters"},
		{name: "not under api v1", change: func(m *pluginv1.Manifest) { m.Routes[0].Path = "/quizzes" }, want: "must start with /api/v1/"},
		{name: "bad method", change: func(m *pluginv1.Manifest) { m.Routes[0].Method = "TRACE" }, want: "method must be one of"},
		{name: "unknown permission", change: func(m *pluginv1.Manifest) { m.Routes[0].Permission = "quiz.quiz.grade" }, want: `unknown permission "quiz.quiz.grade"`},
		{name: "no permission", change: func(m *pluginv1.Manifest) { m.Routes[0].Permission = "" }, want: "must name a permission"},
		{name: "platform permission", change: func(m *pluginv1.Manifest) {
			m.Routes[0].Permission = "platform.tenant.create"
		}, want: "plugins cannot require platform permissions"},
		{name: "conflict with another plugin", change: func(m *pluginv1.Manifest) { m.Routes[0].Path = "/api/v1/exams/{exam}" }, want: `conflicts with route GET /api/v1/exams/{id} of plugin "exams"`},
		{name: "own overlap", change: func(m *pluginv1.Manifest) { m.Routes[1].Path = "/api/v1/quizzes/new" }, want: "overlaps the plugin's own route"},
		{name: "permission of another owner", change: func(m *pluginv1.Manifest) { m.Permissions[0].Name = "courses.quiz.read" }, want: `must start with "quiz."`},
		{name: "bad default role", change: func(m *pluginv1.Manifest) { m.Permissions[0].DefaultRoles = []string{"dean"} }, want: `"dean" is not a built-in role`},
		{name: "bad event type", change: func(m *pluginv1.Manifest) { m.Publishes[0].Type = "quiz.finished" }, want: "must look like quiz.noun.verb.v1"},
		{name: "foreign event", change: func(m *pluginv1.Manifest) { m.Publishes[0].Type = "courses.quiz.done.v1" }, want: "publishes only events named quiz."},
		{name: "event without schema", change: func(m *pluginv1.Manifest) { m.Publishes[0].SchemaJson = nil }, want: "needs a JSON Schema"},
		{name: "bad event schema", change: func(m *pluginv1.Manifest) { m.Publishes[0].SchemaJson = []byte(`{"type": 5}`) }, want: "quiz.attempt.finished.v1"},
		{name: "bad subscription", change: func(m *pluginv1.Manifest) { m.Subscribes = []string{"anything"} }, want: `subscription "anything"`},
		{name: "bad cron", change: func(m *pluginv1.Manifest) { m.Jobs[0].Schedule = "every day" }, want: `schedule "every day"`},
		{name: "job with a foreign permission", change: func(m *pluginv1.Manifest) { m.Jobs[0].Permission = "tenancy.member.read" }, want: "is not one the plugin declares"},
		{name: "migrations out of order", change: func(m *pluginv1.Manifest) {
			m.Migrations = append(m.Migrations, &pluginv1.Migration{Version: 1, Name: "again"})
		}, want: "versions must increase"},
		{name: "bad config schema", change: func(m *pluginv1.Manifest) { m.ConfigSchemaJson = []byte(`{"type":`) }, want: "config schema"},
		{name: "unknown capability", change: func(m *pluginv1.Manifest) { m.Capabilities = []string{"storage", "telepathy"} }, want: `capability "telepathy": unknown (known: storage, platform_storage, retention, grants, sign)`},
		{name: "privileged capability not allowed", change: func(m *pluginv1.Manifest) { m.Capabilities = []string{"storage", "sign"} },
			want: `capability "sign" is privileged and the operator has not allowed it to plugin "quiz": add capabilities = ["sign"] to its block in plugins.hcl`},
		{name: "bad retention class", change: func(m *pluginv1.Manifest) {
			m.Retention = []*pluginv1.RetentionClass{{Name: "attempts", Table: "attempts", TimeColumn: "finished_at", Actions: []string{"shred"}}}
		}, want: `retention class "attempts": action "shred" is not one of delete, anonymise, archive`},
		{name: "capability twice", change: func(m *pluginv1.Manifest) { m.Capabilities = []string{"storage", "storage"} }, want: `capability "storage" is declared twice`},
		{name: "blobs are the kernel's", change: func(m *pluginv1.Manifest) { m.Routes[0].Path = "/api/v1/blobs/{id}" }, want: "/api/v1/blobs is reserved for the kernel"},
		{name: "bad openapi fragment", change: func(m *pluginv1.Manifest) { m.Routes[0].ResponseSchemaJson = []byte(`[1]`) }, want: "must be a JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := goodManifest()
			tc.change(m)
			proto := tc.proto
			if proto == 0 {
				proto = 1
			}
			_, err := validateManifest(m, cfg, proto, others, known)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}
