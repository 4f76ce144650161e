package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const sqlMeta = "x'; DROP TABLE kernel.users;--"

func TestBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acme := b.institution("acme")
	signup := "/api/v1/auth/signup"
	invite := "/api/v1/tenant/invitations"
	goodSignup := `{"email":"ok@example.edu","password":"` + password + `","display_name":"Ok"}`
	// cursor is a cursor in the form the API hands out (base64 of its sort
	// key as a JSON list) holding s.
	cursor := func(s string) string {
		k, _ := json.Marshal([]string{s})
		return url.QueryEscape(base64.RawURLEncoding.EncodeToString(k))
	}

	tests := []struct {
		name    string
		method  string
		path    string
		admin   bool // send acme's admin token
		body    any
		headers []string
		status  int
		code    string
		field   string
	}{
		{name: "malformed JSON", method: "POST", path: signup, body: `{"email": "a@b.co",`, status: 400, code: "malformed-json"},
		{name: "not JSON at all", method: "POST", path: invite, admin: true, body: `email=a@b.co`, status: 400, code: "malformed-json"},
		{name: "array instead of object", method: "POST", path: signup, body: `[1,2]`, status: 400, code: "malformed-json"},
		{name: "wrong type", method: "POST", path: signup, body: `{"email":5,"password":"x","display_name":"y"}`, status: 422, code: "invalid-request", field: "email"},
		{name: "wrong type in list", method: "POST", path: invite, admin: true, body: `{"email":"a@b.co","roles":"learner"}`, status: 422, code: "invalid-request", field: "roles"},
		{name: "wrong type for bool", method: "PATCH", path: "/api/v1/tenant", admin: true, body: `{"self_signup":"yes"}`, status: 422, code: "invalid-request", field: "self_signup"},
		{name: "unknown field", method: "POST", path: signup, body: `{"email":"a@b.co","password":"x","display_name":"y","is_operator":true}`, status: 422, code: "invalid-request", field: "is_operator"},
		{name: "unknown field on tenant route", method: "POST", path: invite, admin: true, body: `{"email":"a@b.co","roles":["learner"],"expires_at":"2099-01-01T00:00:00Z"}`, status: 422, code: "invalid-request", field: "expires_at"},
		{name: "empty body", method: "POST", path: signup, body: ``, status: 400, code: "malformed-json"},
		{name: "whitespace body", method: "POST", path: invite, admin: true, body: " \n\t", status: 400, code: "malformed-json"},
		{name: "two JSON values", method: "POST", path: signup, body: goodSignup + goodSignup, status: 400, code: "malformed-json"},
		{name: "trailing garbage", method: "POST", path: "/api/v1/auth/login", body: `{"email":"a@b.co","password":"x"} x`, status: 400, code: "malformed-json"},
		{name: "text/plain", method: "POST", path: signup, body: goodSignup, headers: []string{"Content-Type", "text/plain"}, status: 415, code: "unsupported-media-type"},
		{name: "form content type", method: "POST", path: invite, admin: true, body: `{"email":"a@b.co","roles":["learner"]}`, headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, status: 415, code: "unsupported-media-type"},
		{name: "invalid email", method: "POST", path: signup, body: map[string]any{"email": "not-an-email", "password": password, "display_name": "x"}, status: 422, code: "invalid-request", field: "email"},
		{name: "email with display name", method: "POST", path: signup, body: map[string]any{"email": "Ada <ada@example.edu>", "password": password, "display_name": "x"}, status: 422, code: "invalid-request", field: "email"},
		{name: "weak password", method: "POST", path: signup, body: map[string]any{"email": "weak@example.edu", "password": "aaaaaaaaaaaaaaaa", "display_name": "x"}, status: 422, code: "invalid-request", field: "password"},
		{name: "short password", method: "POST", path: signup, body: map[string]any{"email": "weak@example.edu", "password": "aB3$", "display_name": "x"}, status: 422, code: "invalid-request", field: "password"},
		{name: "SQL in signup email", method: "POST", path: signup, body: map[string]any{"email": sqlMeta, "password": password, "display_name": "x"}, status: 422, code: "invalid-request", field: "email"},
		{name: "SQL in login email", method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": sqlMeta, "password": password}, status: 422, code: "invalid-request", field: "email"},
		{name: "SQL in login tenant", method: "POST", path: "/api/v1/auth/login", body: map[string]any{"email": "admin@acme.test", "password": password, "tenant": sqlMeta}, status: 422, code: "invalid-request", field: "tenant"},
		{name: "SQL in signup tenant", method: "POST", path: signup, body: map[string]any{"email": "sql@example.edu", "password": password, "display_name": "x", "tenant": sqlMeta}, status: 422, code: "invalid-request", field: "tenant"},
		{name: "SQL in member ID", method: "GET", path: "/api/v1/tenant/members/" + url.PathEscape(sqlMeta), admin: true, status: 404, code: "not-found"},
		{name: "SQL in member roles ID", method: "PUT", path: "/api/v1/tenant/members/" + url.PathEscape(sqlMeta) + "/roles", admin: true, body: map[string]any{"roles": []string{"learner"}}, status: 404, code: "not-found"},
		{name: "SQL in role name", method: "PUT", path: "/api/v1/tenant/roles/" + url.PathEscape(sqlMeta), admin: true, body: map[string]any{"permissions": []string{}}, status: 422, code: "invalid-request", field: "role"},
		{name: "SQL in role to delete", method: "DELETE", path: "/api/v1/tenant/roles/" + url.PathEscape(sqlMeta), admin: true, status: 404, code: "not-found"},
		{name: "SQL in invitation ID", method: "DELETE", path: "/api/v1/tenant/invitations/" + url.PathEscape(sqlMeta), admin: true, status: 404, code: "not-found"},
		{name: "SQL in invitation token", method: "POST", path: signup, body: map[string]any{"email": "sql@example.edu", "password": password, "display_name": "x", "invitation_token": "edi_" + sqlMeta}, status: 410, code: "invalid-invitation"},
		{name: "SQL in cursor", method: "GET", path: "/api/v1/tenant/members?cursor=" + cursor(sqlMeta), admin: true, status: 422, code: "invalid-request", field: "cursor"},
		{name: "SQL in audit cursor", method: "GET", path: "/api/v1/tenant/audit?cursor=" + cursor(sqlMeta), admin: true, status: 422, code: "invalid-request", field: "cursor"},
		{name: "unknown route", method: "GET", path: "/api/v1/nothing-here", status: 404, code: "not-found"},
		{name: "unknown route under tenant", method: "GET", path: "/api/v1/tenant/nothing", admin: true, status: 404, code: "not-found"},
		{name: "wrong method", method: "PATCH", path: "/api/v1/me", admin: true, status: 405, code: "method-not-allowed"},
		{name: "wrong method on public route", method: "GET", path: signup, status: 405, code: "method-not-allowed"},
		{name: "bad UUID in path", method: "GET", path: "/api/v1/tenant/members/not-a-uuid", admin: true, status: 404, code: "not-found"},
		{name: "bad UUID to revoke key", method: "DELETE", path: "/api/v1/tenant/apikeys/123", admin: true, status: 404, code: "not-found"},
		{name: "bad UUID session", method: "DELETE", path: "/api/v1/me/sessions/zzz", admin: true, status: 404, code: "not-found"},
		{name: "limit zero", method: "GET", path: "/api/v1/tenant/members?limit=0", admin: true, status: 422, code: "invalid-request", field: "limit"},
		{name: "limit not a number", method: "GET", path: "/api/v1/tenant/members?limit=abc", admin: true, status: 422, code: "invalid-request", field: "limit"},
		{name: "limit too big", method: "GET", path: "/api/v1/tenant/audit?limit=101", admin: true, status: 422, code: "invalid-request", field: "limit"},
		{name: "limit negative", method: "GET", path: "/api/v1/tenant/invitations?limit=-1", admin: true, status: 422, code: "invalid-request", field: "limit"},
		{name: "bogus cursor", method: "GET", path: "/api/v1/tenant/members?cursor=!!not-base64!!", admin: true, status: 422, code: "invalid-request", field: "cursor"},
		{name: "cursor of another list", method: "GET", path: "/api/v1/tenant/invitations?cursor=" + cursor("12345"), admin: true, status: 422, code: "invalid-request", field: "cursor"},

		// Postgres stores no NUL in text (SQLSTATE 22021) or jsonb (22P05),
		// nor bytes that are not UTF-8: refused before any query, naming where.
		{name: "NUL in API key name", method: "POST", path: "/api/v1/tenant/apikeys", admin: true, body: `{"name":"ci\u0000","permissions":["tenancy.member.read"]}`, status: 422, code: "invalid-request", field: "name"},
		{name: "NUL in role description", method: "PUT", path: "/api/v1/tenant/roles/ta", admin: true, body: `{"description":"\u0000","permissions":[]}`, status: 422, code: "invalid-request", field: "description"},
		{name: "NUL in a permission", method: "PUT", path: "/api/v1/tenant/roles/ta", admin: true, body: `{"description":"TA","permissions":["tenancy.member.read","x\u0000"]}`, status: 422, code: "invalid-request", field: "permissions[1]"},
		{name: "NUL in invitation email", method: "POST", path: invite, admin: true, body: `{"email":"a\u0000@b.co","roles":["learner"]}`, status: 422, code: "invalid-request", field: "email"},
		{name: "NUL in institution name", method: "PATCH", path: "/api/v1/tenant", admin: true, body: `{"name":"Acme\u0000"}`, status: 422, code: "invalid-request", field: "name"},
		{name: "NUL in signup display name", method: "POST", path: signup, body: `{"email":"nul@example.edu","password":"` + password + `","display_name":"\u0000"}`, status: 422, code: "invalid-request", field: "display_name"},
		{name: "NUL in role to delete", method: "DELETE", path: "/api/v1/tenant/roles/%00", admin: true, status: 422, code: "invalid-request", field: "role"},
		{name: "NUL in role to put", method: "PUT", path: "/api/v1/tenant/roles/ta%00", admin: true, body: map[string]any{"permissions": []string{}}, status: 422, code: "invalid-request", field: "role"},
		{name: "not UTF-8 in role to delete", method: "DELETE", path: "/api/v1/tenant/roles/%FF", admin: true, status: 422, code: "invalid-request", field: "role"},
		{name: "NUL in member ID", method: "GET", path: "/api/v1/tenant/members/%00", admin: true, status: 422, code: "invalid-request", field: "user_id"},
		{name: "cursor of NUL bytes", method: "GET", path: "/api/v1/tenant/members?cursor=AAAA", admin: true, status: 422, code: "invalid-request", field: "cursor"},
		{name: "cursor not UTF-8", method: "GET", path: "/api/v1/tenant/audit?cursor=" + cursor("\xff\xfe"), admin: true, status: 422, code: "invalid-request", field: "cursor"},
		{name: "NUL in a query filter", method: "GET", path: "/api/v1/events?type=a%00", admin: true, status: 422, code: "invalid-request", field: "type"},
		{name: "not UTF-8 in a query filter", method: "GET", path: "/api/v1/events/deliveries?subscriber=%c3%28", admin: true, status: 422, code: "invalid-request", field: "subscriber"},
		{name: "malformed query string", method: "GET", path: "/api/v1/tenant/members?limit=%zz", admin: true, status: 422, code: "invalid-request", field: "query"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := ""
			if tc.admin {
				tok = acme.admin
			}
			r := b.do(tc.method, tc.path, tok, tc.body, tc.headers...)
			requireProblem(t, r, tc.status, tc.code)
			if tc.field != "" {
				require.Equal(t, tc.field, problemField(r, 0), "%s", r.Raw)
			}
		})
	}

	// None of it did anything: the users table is there with acme's three,
	// and no invitation was written.
	var users, invitations int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM kernel.users`).Scan(&users))
	require.Equal(t, 3, users)
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM kernel.invitations`).Scan(&invitations))
	require.Zero(t, invitations)

	// SQL metacharacters where they are allowed are stored as given.
	r := b.do("POST", signup, "", map[string]any{"email": "bobby@example.edu", "password": password, "display_name": "Robert'); " + sqlMeta})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	require.Equal(t, "Robert'); "+sqlMeta, r.str("user", "display_name"))
	op := b.operator()
	require.Equal(t, 200, b.do("GET", "/api/v1/tenants?cursor="+cursor(sqlMeta), op, nil).Status)
	r = b.do("GET", "/api/v1/tenants?cursor=AAAA", op, nil) // three NUL bytes
	requireProblem(t, r, 422, "invalid-request")
	require.Equal(t, "cursor", problemField(r, 0), "%s", r.Raw)
	r = b.do("GET", "/api/v1/admin/audit?cursor="+cursor("1\x00"), op, nil)
	requireProblem(t, r, 422, "invalid-request")
	require.Equal(t, "cursor", problemField(r, 0), "%s", r.Raw)
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM kernel.users`).Scan(&users))
	require.Equal(t, 5, users)
}

// TestFailedSignupWritesNothing: a signup refused at any step leaves no
// account behind, so the email stays free.
func TestFailedSignupWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.institution("closed")
	tests := []struct {
		name   string
		extra  map[string]any
		pw     string
		status int
		code   string
	}{
		{name: "weak password", pw: "aaaaaaaaaaaaaaaa", status: 422, code: "invalid-request"},
		{name: "both tenant and invitation", extra: map[string]any{"tenant": "closed", "invitation_token": "edi_x"}, status: 422, code: "invalid-request"},
		{name: "bad invitation", extra: map[string]any{"invitation_token": "edi_nope"}, status: 410, code: "invalid-invitation"},
		{name: "self-signup disabled", extra: map[string]any{"tenant": "closed"}, status: 403, code: "self-signup-disabled"},
		{name: "unknown tenant", extra: map[string]any{"tenant": "nowhere"}, status: 404, code: "not-found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pw := password
			if tc.pw != "" {
				pw = tc.pw
			}
			body := map[string]any{"email": "half@example.edu", "password": pw, "display_name": "Half"}
			for k, v := range tc.extra {
				body[k] = v
			}
			requireProblem(t, b.do("POST", "/api/v1/auth/signup", "", body), tc.status, tc.code)
			require.Zero(t, b.usersWithEmail("half@example.edu"))
		})
	}
	var events int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM (SELECT id, type, tenant_id, data, occurred_at FROM kernel.outbox UNION ALL SELECT id, type, tenant_id, data, occurred_at FROM kernel.events WHERE source = 'kernel') AS ev WHERE data->>'email' = 'half@example.edu'`).Scan(&events))
	require.Zero(t, events, "an event escaped a rolled-back signup")
	// The email is still free.
	require.Equal(t, 201, b.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "half@example.edu", "password": password, "display_name": "Half"}).Status)
}

func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	b := setup(t, "EDULURE_BODY_LIMIT_BYTES", "2048")
	acme := b.institution("acme")
	big := `{"email":"big@example.edu","password":"` + password + `","display_name":"` + strings.Repeat("x", 10<<10) + `"}`

	tests := []struct {
		name    string
		path    string
		token   string
		chunked bool // no Content-Length: the limit is hit while reading
		headers []string
	}{
		{name: "signup", path: "/api/v1/auth/signup"},
		{name: "signup chunked", path: "/api/v1/auth/signup", chunked: true},
		{name: "invitation", path: "/api/v1/tenant/invitations", token: acme.admin},
		{name: "invitation chunked", path: "/api/v1/tenant/invitations", token: acme.admin, chunked: true},
		{name: "idempotent invitation chunked", path: "/api/v1/tenant/invitations", token: acme.admin, chunked: true, headers: []string{"Idempotency-Key", "big-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(big)
			if tc.chunked {
				body = io.MultiReader(strings.NewReader(big)) // hides the length
			}
			req, err := http.NewRequest("POST", b.url+tc.path, body)
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			for i := 0; i+1 < len(tc.headers); i += 2 {
				req.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			raw, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode, "%s", raw)
			require.Equal(t, "application/problem+json", res.Header.Get("Content-Type"))
			require.Contains(t, string(raw), `"code":"body-too-large"`)
			require.Contains(t, string(raw), "2048")
		})
	}
	require.Zero(t, b.usersWithEmail("big@example.edu"))

	// A body under the limit is fine.
	r := b.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "small@example.edu", "password": password, "display_name": "Small"})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
}
