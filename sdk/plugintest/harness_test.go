package plugintest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"
)

type listed struct {
	Items []struct {
		ID     int64  `json:"id"`
		Author string `json:"author"`
		Body   string `json:"body"`
	} `json:"items"`
}

func bodies(t *testing.T, res *plugintest.Result) []string {
	t.Helper()
	require.Equal(t, http.StatusOK, res.Status, res)
	var l listed
	res.JSON(t, &l)
	out := []string{}
	for _, it := range l.Items {
		out = append(out, it.Body)
	}
	return out
}

func TestHandlersRun(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	tenant := plugintest.NewTenant()
	teacher := plugintest.User(tenant, "instructor")

	res := h.Do(teacher, "POST", "/api/v1/notes", map[string]string{"body": "hello"})
	require.Equal(t, http.StatusCreated, res.Status, res)
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	var created struct {
		ID     int64
		Author string
	}
	res.JSON(t, &created)
	require.Equal(t, teacher.UserID, created.Author)

	require.Equal(t, []string{"hello"}, bodies(t, h.Do(plugintest.User(tenant, "learner"), "GET", "/api/v1/notes", nil)))

	var n int
	require.NoError(t, h.DB().QueryRow(context.Background(), "SELECT count(*) FROM plugin_notes.notes WHERE tenant_id = $1", tenant).Scan(&n))
	require.Equal(t, 1, n, "the row is in the plugin's schema, under the principal's tenant")
}

// A handler's query without WHERE tenant_id sees only the caller's
// institution: row-level security does the scoping, in the database.
func TestRowLevelSecurityScopesQueriesWithoutWhere(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	a, b := plugintest.NewTenant(), plugintest.NewTenant()
	_, err := h.DB().Exec(context.Background(), `INSERT INTO plugin_notes.notes (tenant_id, author, body)
		VALUES ($1, 'x', 'a1'), ($2, 'x', 'b1'), ($1, 'x', 'a2')`, a, b)
	require.NoError(t, err)

	require.Equal(t, []string{"a1", "a2"}, bodies(t, h.Do(plugintest.User(a, "learner"), "GET", "/api/v1/notes", nil)))
	require.Equal(t, []string{"b1"}, bodies(t, h.Do(plugintest.User(b, "learner"), "GET", "/api/v1/notes", nil)))
	require.Empty(t, bodies(t, h.Do(plugintest.User(plugintest.NewTenant(), "learner"), "GET", "/api/v1/notes", nil)))

	// A row of another institution is not found, even by its ID.
	var id int64
	require.NoError(t, h.DB().QueryRow(context.Background(), "SELECT id FROM plugin_notes.notes WHERE body = 'b1'").Scan(&id))
	res := h.Do(plugintest.User(a, "learner"), "GET", "/api/v1/notes/"+jsonNumber(id), nil)
	require.Equal(t, http.StatusNotFound, res.Status, res)
	require.Equal(t, http.StatusOK, h.Do(plugintest.User(b, "learner"), "GET", "/api/v1/notes/"+jsonNumber(id), nil).Status)

	// Writing a row for another institution is refused too.
	err = h.InTenant(a, func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), "INSERT INTO notes (tenant_id, author, body) VALUES ($1, 'x', 'sneaky')", b)
		return err
	})
	requirePgCode(t, err, "42501") // new row violates row-level security policy
	err = h.InTenant(a, func(tx pgx.Tx) error {
		tag, err := tx.Exec(context.Background(), "UPDATE notes SET body = 'changed'")
		require.EqualValues(t, 2, tag.RowsAffected(), "only a's rows")
		return err
	})
	require.NoError(t, err)
	require.Equal(t, []string{"b1"}, bodies(t, h.Do(plugintest.User(b, "learner"), "GET", "/api/v1/notes", nil)))
}

func TestTransactionWithoutTenantSeesNothingAndCannotInsert(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	tenant := plugintest.NewTenant()
	_, err := h.DB().Exec(context.Background(), "INSERT INTO plugin_notes.notes (tenant_id, author, body) VALUES ($1, 'x', 'y')", tenant)
	require.NoError(t, err)

	err = h.InTenant("", func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(context.Background(), "SELECT count(*) FROM notes").Scan(&n); err != nil {
			return err
		}
		require.Zero(t, n)
		var kinds int // a table without tenant_id is not scoped
		if err := tx.QueryRow(context.Background(), "SELECT count(*) FROM note_kinds").Scan(&kinds); err != nil {
			return err
		}
		require.Equal(t, 1, kinds)
		return nil
	})
	require.NoError(t, err)

	err = h.InTenant("", func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), "INSERT INTO notes (tenant_id, author, body) VALUES ($1, 'x', 'y')", tenant)
		return err
	})
	requirePgCode(t, err, "42501")
}

// The plugin's role reaches its own schema only: not the kernel's tables,
// not the public schema, not another plugin's schema in the same database.
func TestPluginRoleCannotReachOtherSchemas(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	other := plugintest.New(t, things{}, plugintest.WithDatabaseOf(h))
	ctx := context.Background()
	_, err := h.DB().Exec(ctx, `
		CREATE SCHEMA kernel;
		CREATE TABLE kernel.users (id uuid PRIMARY KEY, email text NOT NULL);
		INSERT INTO kernel.users VALUES (gen_random_uuid(), 'someone@example.com');
		CREATE TABLE public.secrets (v text);`)
	require.NoError(t, err)

	for _, q := range []string{
		"SELECT count(*) FROM kernel.users",
		"SELECT count(*) FROM public.secrets",
		"SELECT count(*) FROM plugin_things.things",
		"SELECT count(*) FROM plugin_things.catalogue",
		"SELECT count(*) FROM plugin_notes.edulure_migrations",
	} {
		err := h.InTenant(plugintest.NewTenant(), func(tx pgx.Tx) error {
			var n int
			return tx.QueryRow(ctx, q).Scan(&n)
		})
		requirePgCode(t, err, "42501", q) // permission denied
	}
	err = other.InTenant("", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO plugin_notes.note_kinds VALUES ('mine now')")
		return err
	})
	requirePgCode(t, err, "42501")

	// Each still reaches its own.
	err = other.InTenant("", func(tx pgx.Tx) error {
		var n int
		return tx.QueryRow(ctx, "SELECT count(*) FROM catalogue").Scan(&n)
	})
	require.NoError(t, err)
}

// The plugin's role does not own its tables, so it can neither switch
// row-level security off nor widen it, nor become the owner.
func TestPluginRoleCannotDisableRowLevelSecurity(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	for _, stmt := range []string{
		"ALTER TABLE notes DISABLE ROW LEVEL SECURITY",
		"ALTER TABLE notes NO FORCE ROW LEVEL SECURITY",
		"DROP POLICY edulure_tenant_isolation ON notes",
		"CREATE POLICY everything ON notes USING (true)",
		"CREATE TABLE more (tenant_id uuid)",
		"SET ROLE " + ownerRole(t, h),
		"SET SESSION AUTHORIZATION postgres",
	} {
		err := h.InTenant(plugintest.NewTenant(), func(tx pgx.Tx) error {
			_, err := tx.Exec(context.Background(), stmt)
			return err
		})
		requirePgCode(t, err, "42501", stmt)
	}
	var forced bool
	require.NoError(t, h.DB().QueryRow(context.Background(),
		"SELECT relforcerowsecurity FROM pg_class WHERE oid = 'plugin_notes.notes'::regclass").Scan(&forced))
	require.True(t, forced)
}

func ownerRole(t *testing.T, h *plugintest.Harness) string {
	var owner string
	require.NoError(t, h.DB().QueryRow(context.Background(),
		"SELECT tableowner FROM pg_tables WHERE schemaname = 'plugin_notes' AND tablename = 'notes'").Scan(&owner))
	return pgx.Identifier{owner}.Sanitize()
}

func TestAccessChecks(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	tenant, off := plugintest.NewTenant(), plugintest.NewTenant()
	h.SetEnabled(off, false)
	body := map[string]string{"body": "b"}
	custom := plugintest.User(tenant, "learner")
	custom.Permissions = []string{"notes.note.create"} // the institution changed what learners get
	for _, tc := range []struct {
		name   string
		p      sdk.Principal
		method string
		path   string
		status int
		code   string
	}{
		{name: "anonymous", p: plugintest.Anonymous(), method: "GET", path: "/api/v1/notes", status: 401, code: "missing-credentials"},
		{name: "zero principal is anonymous", p: sdk.Principal{}, method: "GET", path: "/api/v1/notes", status: 401, code: "missing-credentials"},
		{name: "no institution", p: plugintest.User("", "admin"), method: "GET", path: "/api/v1/notes", status: 403, code: "tenant-required"},
		{name: "learner may not create", p: plugintest.User(tenant, "learner"), method: "POST", path: "/api/v1/notes", status: 403, code: "permission-denied"},
		{name: "no roles", p: plugintest.User(tenant), method: "GET", path: "/api/v1/notes", status: 403, code: "permission-denied"},
		{name: "admin may create", p: plugintest.User(tenant, "admin"), method: "POST", path: "/api/v1/notes", status: 201},
		{name: "explicit permissions replace the defaults", p: custom, method: "POST", path: "/api/v1/notes", status: 201},
		{name: "explicit permissions only", p: custom, method: "GET", path: "/api/v1/notes", status: 403, code: "permission-denied"},
		{name: "API key with the permission", p: plugintest.APIKey(tenant, "notes.note.create"), method: "POST", path: "/api/v1/notes", status: 201},
		{name: "API key without it", p: plugintest.APIKey(tenant, "notes.note.read"), method: "POST", path: "/api/v1/notes", status: 403, code: "permission-denied"},
		{name: "disabled for the institution", p: plugintest.User(off, "admin"), method: "GET", path: "/api/v1/notes", status: 404, code: "plugin-not-enabled"},
		{name: "public route, anonymous", p: plugintest.Anonymous(), method: "GET", path: "/api/v1/notes-status", status: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.Do(tc.p, tc.method, tc.path, body)
			require.Equal(t, tc.status, res.Status, res)
			if tc.code != "" {
				pr := res.Problem()
				require.Equal(t, tc.code, pr.Code)
				require.Equal(t, tc.status, pr.Status)
				require.Equal(t, plugintest.ProblemTypeBase+tc.code, pr.Type)
				require.NotEmpty(t, pr.Detail)
			}
		})
	}
	require.Equal(t, `Bearer realm="edulure"`, h.Do(plugintest.Anonymous(), "GET", "/api/v1/notes", nil).Header.Get("WWW-Authenticate"))
}

func TestRouting(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	p := plugintest.User(plugintest.NewTenant(), "learner")

	res := h.Do(p, "GET", "/api/v1/nothing", nil)
	require.Equal(t, http.StatusNotFound, res.Status)
	require.Equal(t, "not_found", res.Problem().Kind)
	require.Equal(t, "no route GET /api/v1/nothing", res.Problem().Detail)

	res = h.Do(p, "DELETE", "/api/v1/notes", nil)
	require.Equal(t, http.StatusMethodNotAllowed, res.Status)
	require.Equal(t, "method-not-allowed", res.Problem().Code)

	var echo struct {
		Route     string
		Path      string
		Params    map[string]string
		Query     map[string][]string
		Principal sdk.Principal
		RequestID string `json:"request_id"`
		Deadline  bool   `json:"has_deadline"`
		Header    map[string][]string
		// TypedQuery is what sdk.Query read.
		TypedQuery echoQuery `json:"typed_query"`
	}
	res = h.DoRequest(plugintest.Request{
		Principal: p, Method: "get", Path: "/api/v1/notes-echo/a%20b?limit=5&tag=x&tag=y&undeclared=1",
		Header: http.Header{"Accept-Language": {"fr"}, "Authorization": {"Bearer secret"}, "X-Other": {"x"}}, RequestID: "req-1",
	})
	require.Equal(t, http.StatusOK, res.Status, res)
	res.JSON(t, &echo)
	require.Equal(t, "GET /api/v1/notes-echo/{anything}", echo.Route)
	require.Equal(t, "/api/v1/notes-echo/a%20b", echo.Path)
	require.Equal(t, map[string]string{"anything": "a b"}, echo.Params)
	require.Equal(t, map[string][]string{"limit": {"5"}, "tag": {"x", "y"}}, echo.Query, "only declared parameters are forwarded")
	require.Equal(t, echoQuery{Limit: 5, Tag: []string{"x", "y"}}, echo.TypedQuery)
	require.Equal(t, "req-1", echo.RequestID)
	require.True(t, echo.Deadline)
	require.Equal(t, map[string][]string{"Accept-Language": {"fr"}}, echo.Header, "only the headers the kernel passes on")
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	require.Equal(t, p.UserID, echo.Principal.UserID)
	require.Equal(t, []string{"notes.note.read"}, echo.Principal.Permissions, "the learner's default permissions")

	// An absent parameter takes its default.
	res = h.Do(p, "GET", "/api/v1/notes-echo/x", nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	res.JSON(t, &echo)
	require.Equal(t, 20, echo.TypedQuery.Limit)

	// Declared parameters are checked against their schemas before the
	// handler runs, as the kernel does.
	for _, tc := range []struct{ query, field, message string }{
		{"limit=five", "limit", "must be an integer"},
		{"limit=0", "limit", "must be at least 1"},
		{"limit=1&limit=2", "limit", "must be given once"},
		{"tag=abcdefghijklmnop", "tag.0", "must be at most 10 characters long"},
	} {
		res := h.Do(p, "GET", "/api/v1/notes-echo/x?"+tc.query, nil)
		require.Equal(t, http.StatusUnprocessableEntity, res.Status, res)
		require.Equal(t, []sdk.FieldError{{Field: tc.field, Message: tc.message}}, res.Problem().Fields, tc.query)
	}
}

func TestErrorsBecomeProblems(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	for _, tc := range []struct {
		kind   string
		status int
		code   string
	}{
		{"invalid", 422, "invalid-request"},
		{"bad_request", 400, "bad-request"},
		{"unauthorized", 401, "unauthorized"},
		{"forbidden", 403, "forbidden"},
		{"not_found", 404, "not-found"},
		{"conflict", 409, "already-there"},
		{"gone", 410, "gone"},
		{"too_many_requests", 429, "rate-limited"},
		{"unavailable", 503, "unavailable"},
		{"too_large", 413, "too-large"},
		{"internal", 500, "plugin-error"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			res := h.DoRequest(plugintest.Request{Principal: plugintest.Anonymous(), Method: "GET", Path: "/api/v1/notes-errors/" + tc.kind, RequestID: "r-" + tc.kind})
			require.Equal(t, tc.status, res.Status, res)
			require.Equal(t, plugintest.ProblemContentType, res.Header.Get("Content-Type"))
			pr := res.Problem()
			require.Equal(t, tc.kind, pr.Kind)
			require.Equal(t, tc.code, pr.Code)
			require.Equal(t, "r-"+tc.kind, pr.RequestID)
			require.Equal(t, "/api/v1/notes-errors/"+tc.kind, pr.Instance)
			switch tc.kind {
			case "invalid":
				require.Equal(t, []string{"a", "b.0"}, pr.FieldNames())
			case "too_many_requests":
				require.Equal(t, "7", res.Header.Get("Retry-After"))
			case "internal":
				require.NotContains(t, string(res.Body), "10.0.0.7", "internal details stay in the plugin's log")
				require.Equal(t, "plugin", pr.Source)
			default:
				require.Equal(t, "failing with "+tc.kind, pr.Detail)
			}
			if tc.status < 500 {
				require.Equal(t, "client", pr.Source)
			}
		})
	}
}

func TestPanicIsInternalError(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	p := plugintest.User(plugintest.NewTenant(), "learner")
	res := h.Do(p, "GET", "/api/v1/notes-panic", nil)
	require.Equal(t, http.StatusInternalServerError, res.Status)
	require.Equal(t, "internal", res.Problem().Kind)
	require.NotContains(t, string(res.Body), "the handler broke")
	require.Equal(t, http.StatusOK, h.Do(p, "GET", "/api/v1/notes", nil).Status, "the plugin keeps serving")
}

func TestBadBodies(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	p := plugintest.User(plugintest.NewTenant(), "instructor")
	for _, tc := range []struct {
		name   string
		body   any
		status int
		fields []string
	}{
		{name: "none", body: nil, status: 400},
		{name: "not JSON", body: "{", status: 400},
		{name: "unknown field", body: `{"body":"x","extra":1}`, status: 422, fields: []string{"extra"}},
		{name: "NUL", body: `{"body":"a\u0000b"}`, status: 422, fields: []string{"body"}},
		{name: "wrong type", body: []byte(`{"body":1}`), status: 422, fields: []string{"body"}},
		{name: "empty", body: json.RawMessage(`{"body":""}`), status: 422, fields: []string{"body"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.Do(p, "POST", "/api/v1/notes", tc.body)
			require.Equal(t, tc.status, res.Status, res)
			if tc.fields != nil {
				require.Equal(t, tc.fields, res.Problem().FieldNames())
			}
		})
	}
	require.Empty(t, bodies(t, h.Do(p, "GET", "/api/v1/notes", nil)), "nothing half-written")
}

func TestConfiguration(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes(), plugintest.WithOperatorConfig(json.RawMessage(`{"region":"us"}`)))
	tenant, other := plugintest.NewTenant(), plugintest.NewTenant()
	h.SetTenantConfig(tenant, json.RawMessage(`{"label":"XP"}`))

	type echoed struct {
		Config         json.RawMessage
		OperatorConfig json.RawMessage `json:"operator_config"`
		Settings       notesConfig
	}
	get := func(r plugintest.Request) echoed {
		res := h.DoRequest(r)
		require.Equal(t, http.StatusOK, res.Status, res)
		var e echoed
		res.JSON(t, &e)
		return e
	}
	e := get(plugintest.Request{Principal: plugintest.User(tenant, "learner"), Method: "GET", Path: "/api/v1/notes-echo/x"})
	require.JSONEq(t, `{"label":"XP"}`, string(e.Config))
	require.JSONEq(t, `{"region":"us"}`, string(e.OperatorConfig))
	require.Equal(t, notesConfig{Label: "XP", Region: "us"}, e.Settings, "the institution's over the operator's over the defaults")
	e = get(plugintest.Request{Principal: plugintest.User(other, "learner"), Method: "GET", Path: "/api/v1/notes-echo/x"})
	require.JSONEq(t, `{}`, string(e.Config), "one institution's configuration is not another's")
	require.Equal(t, notesConfig{Label: "notes", Region: "us"}, e.Settings)
	e = get(plugintest.Request{Principal: plugintest.User(other, "learner"), Method: "GET", Path: "/api/v1/notes-echo/x", Config: json.RawMessage(`{"label":"once"}`)})
	require.JSONEq(t, `{"label":"once"}`, string(e.Config))

	cfg, enabled, err := h.Env().Host.TenantConfig(context.Background(), tenant)
	require.NoError(t, err)
	require.True(t, enabled)
	require.JSONEq(t, `{"label":"XP"}`, string(cfg))
}

func TestDefaultHost(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	tenant := plugintest.NewTenant()
	teacher := plugintest.User(tenant, "instructor")
	res := h.DoRequest(plugintest.Request{Principal: teacher, Method: "POST", Path: "/api/v1/notes", Body: map[string]string{"body": "x"}, RequestID: "req-9"})
	require.Equal(t, http.StatusCreated, res.Status, res)

	entries := h.AuditEntries()
	require.Len(t, entries, 1)
	require.Equal(t, "notes.note.create", entries[0].Action)
	require.Equal(t, tenant, entries[0].TenantID)
	require.Equal(t, teacher.UserID, entries[0].Actor.UserID)
	require.Equal(t, "req-9", entries[0].RequestID)

	host := h.Env().Host
	ctx := context.Background()
	err := host.Audit(ctx, sdk.AuditEntry{TenantID: tenant, Action: "courses.course.delete"})
	require.ErrorContains(t, err, `must start with "notes."`, "a plugin audits its own actions only")
	require.Error(t, host.Audit(ctx, sdk.AuditEntry{TenantID: tenant, Action: "notes.x", Details: []int{1}}), "details are a JSON object")
	require.Error(t, host.Audit(ctx, sdk.AuditEntry{Action: "notes.x"}), "an entry belongs to an institution")
	require.Len(t, h.AuditEntries(), 1)

	for _, tc := range []struct {
		name    string
		p       sdk.Principal
		res     sdk.Resource
		allowed bool
	}{
		{"default permission, own institution", teacher, sdk.Resource{Type: "note", ID: "1", TenantID: tenant}, true},
		{"no institution on the resource", teacher, sdk.Resource{Type: "note", ID: "1"}, true},
		{"another institution", teacher, sdk.Resource{Type: "note", ID: "1", TenantID: plugintest.NewTenant()}, false},
		{"lacking the permission", plugintest.User(tenant, "learner"), sdk.Resource{Type: "note", TenantID: tenant}, false},
		// A plugin asking about someone else sends only the ID: the roles
		// are looked up, as the kernel does.
		{"a member named by ID", sdk.Principal{Kind: "user", UserID: teacher.UserID, TenantID: tenant}, sdk.Resource{TenantID: tenant}, true},
		{"roles claimed by the caller are not trusted", sdk.Principal{Kind: "user", UserID: plugintest.NewID(), TenantID: tenant, Roles: []string{"instructor"}}, sdk.Resource{TenantID: tenant}, false},
		{"a member of another institution", sdk.Principal{Kind: "user", UserID: plugintest.User(plugintest.NewTenant(), "instructor").UserID, TenantID: tenant}, sdk.Resource{TenantID: tenant}, false},
	} {
		ok, err := host.Authorize(ctx, tc.p, "notes.note.create", tc.res)
		require.NoError(t, err)
		require.Equal(t, tc.allowed, ok, tc.name)
	}
}

func TestWithHost(t *testing.T) {
	t.Parallel()
	var audited []string
	h := plugintest.New(t, newNotes(), plugintest.WithHost(plugintest.HostFuncs{
		AuditFunc: func(_ context.Context, e sdk.AuditEntry) error { audited = append(audited, e.Action); return nil },
	}))
	res := h.Do(plugintest.User(plugintest.NewTenant(), "admin"), "POST", "/api/v1/notes", map[string]string{"body": "x"})
	require.Equal(t, http.StatusCreated, res.Status, res)
	require.Equal(t, []string{"notes.note.create"}, audited)
	require.Empty(t, h.AuditEntries())
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

func requirePgCode(t *testing.T, err error, code string, msg ...any) {
	t.Helper()
	var pe *pgconn.PgError
	require.True(t, errors.As(err, &pe), "want Postgres error %s, got %v %v", code, err, msg)
	require.Equal(t, code, pe.Code, "%s %v", pe.Message, msg)
}

func TestJoinMakesAMemberOfTwoInstitutions(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	a, b, c := plugintest.NewTenant(), plugintest.NewTenant(), plugintest.NewTenant()
	teacher := plugintest.User(a, "instructor")
	learner := plugintest.Join(teacher, b, "learner")
	require.Equal(t, teacher.UserID, learner.UserID)
	host := h.Env().Host
	ctx := context.Background()
	for _, tc := range []struct {
		tenant string
		want   sdk.Membership
	}{
		{a, sdk.Membership{Member: true, Roles: []string{"instructor"}}},
		{b, sdk.Membership{Member: true, Roles: []string{"learner"}}},
		{c, sdk.Membership{}},
	} {
		m, err := host.Membership(ctx, tc.tenant, teacher.UserID)
		require.NoError(t, err)
		require.Equal(t, tc.want, m)
	}
	require.True(t, must(host.Membership(ctx, a, teacher.UserID)).HasRole("instructor"))
	require.False(t, must(host.Membership(ctx, b, teacher.UserID)).HasRole("instructor"))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
