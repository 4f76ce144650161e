package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/app"
	"github.com/edulure/edulure/kernel/internal/config"
	"github.com/edulure/edulure/kernel/internal/dbtest"
)

func TestMain(m *testing.M) {
	code := dbtest.Main(m)
	removePluginBuilds()
	stopStripeMock()
	reportCheckedOperations()
	os.Exit(code)
}

// testBundle is a running kernel on a fresh database.
type testBundle struct {
	t        testing.TB
	allow5xx bool // plugin tests expect 502/503/504
	url      string
	pool     *pgxpool.Pool
	kernel   *app.Kernel
	document *documentCheck // every answer do gets is checked against /api/openapi.json
	// undocumented are operations ("GET /api/v1/conf/status/{code}") whose
	// answers the document cannot describe, with the reason.
	undocumented map[string]string
}

func setup(t testing.TB, env ...string) *testBundle {
	t.Helper()
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: io.Discard})
	if testing.Verbose() {
		log = hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: os.Stderr})
	}
	return setupLogged(t, log, env...)
}

// setupLogged is setup with the kernel logging to log.
func setupLogged(t testing.TB, log hclog.Logger, env ...string) *testBundle {
	t.Helper()
	return setupKernel(t, log, nil, env...)
}

// setupKernel is setupLogged with options for app.New.
func setupKernel(t testing.TB, log hclog.Logger, opts []app.Option, env ...string) *testBundle {
	t.Helper()
	pool, dbURL := dbtest.NewPool(t)
	vars := map[string]string{
		"DATABASE_URL":                  dbURL,
		"EDULURE_SECRET_KEY":            strings.Repeat("ab", 32),
		"EDULURE_AUTH_RATE_PER_IP":      "100000",
		"EDULURE_AUTH_RATE_PER_ACCOUNT": "100000",
		"EDULURE_MIGRATE_ON_START":      "false",
		"EDULURE_PLUGINS_FILE":          "none",
		"EDULURE_DB_ROLE_PREFIX":        rolePrefixFor(dbURL),
		"EDULURE_BLOB_URL":              "file://" + t.TempDir(),
	}
	for i := 0; i+1 < len(env); i += 2 {
		vars[env[i]] = env[i+1]
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	k, err := app.New(ctx, cfg, log, pool, opts...)
	require.NoError(t, err)
	t.Cleanup(k.Close)
	k.API.Run(ctx)
	return &testBundle{t: t, url: serve(t, k), pool: pool, kernel: k, document: &documentCheck{}}
}

// serve exposes a kernel's API on a loopback test server.
func serve(t testing.TB, k *app.Kernel) string {
	srv := httptest.NewServer(k.API.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// response is a decoded HTTP answer.
type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

func (r response) str(path ...string) string {
	v := r.get(path...)
	s, _ := v.(string)
	return s
}

func (r response) get(path ...string) any {
	var v any = r.Body
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any: // numeric path elements index arrays
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func (r response) items() []map[string]any {
	raw, _ := r.Body["items"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, it := range raw {
		out = append(out, it.(map[string]any))
	}
	return out
}

// do sends a request; body may be nil, a string (sent raw) or a value
// (JSON). The answer is checked against /api/openapi.json
// (checkAgainstDocument).
func (b *testBundle) do(method, path, token string, body any, headers ...string) response {
	b.t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		j, err := json.Marshal(v)
		require.NoError(b.t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, b.url+path, rd)
	require.NoError(b.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(b.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	out := response{Status: res.StatusCode, Header: res.Header, Raw: raw}
	if len(raw) > 0 && strings.Contains(res.Header.Get("Content-Type"), "json") {
		_ = json.Unmarshal(raw, &out.Body)
	}
	if res.StatusCode >= 500 && !b.allow5xx {
		b.t.Errorf("%s %s: server error %d: %s", method, path, res.StatusCode, raw)
	}
	b.checkAgainstDocument(req, res, raw)
	return out
}

// requireProblem asserts a problem+json answer with the status and code.
func requireProblem(t *testing.T, r response, status int, code string) {
	t.Helper()
	require.Equal(t, status, r.Status, "body: %s", r.Raw)
	require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"), "body: %s", r.Raw)
	require.Equal(t, code, r.str("code"), "body: %s", r.Raw)
	require.NotEmpty(t, r.str("detail"))
	require.Equal(t, float64(status), r.get("status"))
	require.NotEmpty(t, r.str("request_id"))
}

const password = "correct-Horse-battery-9"

// operator creates a platform operator and returns an access token.
func (b *testBundle) operator() string {
	b.t.Helper()
	_, err := app.CreateUser(context.Background(), b.pool, app.UserSpec{Email: "op@platform.test", Name: "Op", Password: password, Operator: true})
	require.NoError(b.t, err)
	return b.login("op@platform.test", "")
}

func (b *testBundle) login(email, tenant string) string {
	b.t.Helper()
	body := map[string]any{"email": email, "password": password}
	if tenant != "" {
		body["tenant"] = tenant
	}
	r := b.do("POST", "/api/v1/auth/login", "", body)
	require.Equal(b.t, 200, r.Status, "login %s: %s", email, r.Raw)
	require.NotEmpty(b.t, r.str("access_token"), "login %s: %s", email, r.Raw)
	return r.str("access_token")
}

// institution creates a tenant with an admin, an instructor and a learner
// and returns their tokens.
type institution struct {
	slug, id                         string
	admin, instructor, learner       string
	adminID, instructorID, learnerID string
}

func (b *testBundle) institution(slug string) institution {
	b.t.Helper()
	ctx := context.Background()
	tn, err := app.CreateTenant(ctx, b.pool, slug, "Institution "+slug)
	require.NoError(b.t, err)
	inst := institution{slug: slug, id: tn.ID.String()}
	for _, role := range []string{"admin", "instructor", "learner"} {
		u, err := app.CreateUser(ctx, b.pool, app.UserSpec{Email: role + "@" + slug + ".test", Name: role, Password: password, Tenant: slug, Roles: []string{role}})
		require.NoError(b.t, err)
		tok := b.login(role+"@"+slug+".test", slug)
		switch role {
		case "admin":
			inst.admin, inst.adminID = tok, u.ID.String()
		case "instructor":
			inst.instructor, inst.instructorID = tok, u.ID.String()
		case "learner":
			inst.learner, inst.learnerID = tok, u.ID.String()
		}
	}
	return inst
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCode(secret, at)
	require.NoError(t, err)
	return code
}

// rolePrefixFor gives each test database its own plugin role names: roles
// are global to the cluster the tests share.
func rolePrefixFor(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		panic(err)
	}
	name := strings.ToLower(strings.TrimPrefix(u.Path, "/"))
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, name)
	if len(name) > 18 {
		name = name[len(name)-18:]
	}
	return "t" + name + "_"
}
