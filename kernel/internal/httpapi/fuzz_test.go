package httpapi_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/httpapi"
	"github.com/edulure/edulure/kernel/internal/problem"
)

// requireClientProblem asserts that err is a 4xx problem a client can act on.
func requireClientProblem(t *testing.T, err error) *problem.Problem {
	t.Helper()
	var p *problem.Problem
	require.True(t, errors.As(err, &p), "error %v (%T) is not a *problem.Problem", err, err)
	require.Contains(t, []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity}, p.Status, "detail: %s", p.Detail)
	require.NotEmpty(t, strings.TrimSpace(p.Detail))
	require.Equal(t, problem.SourceClient, p.Source)
	if p.Status == http.StatusUnprocessableEntity {
		require.NotEmpty(t, p.Errors, "a 422 names the offending field")
		for _, fe := range p.Errors {
			require.NotEmpty(t, fe.Message) // Field may be "": a client can send {"": 1}
		}
	}
	return p
}

func FuzzDecodeBody(f *testing.F) {
	for _, seed := range []string{
		`{"email":"a@uni.test","password":"correct-Horse-battery-9","display_name":"A","tenant":"uni"}`,
		`{"name":"Uni","self_signup":true,"mfa_required_roles":["admin"]}`,
		`{"mfa_required_roles":null}`,
		`{}`,
		`null`,
		``,
		`   `,
		`[]`,
		`"string"`,
		`42`,
		`{"email":5}`,
		`{"self_signup":"yes"}`,
		`{"mfa_required_roles":[1]}`,
		`{"nickname":"x"}`,
		`{"email":"a"} trailing`,
		`{"email":"a"}{"email":"b"}`,
		`{"email":"a"`,
		`{"email":"\ud800"}`,
		"{\"email\":\"\xff\"}",
		`{"name":1e400}`,
		strings.Repeat("[", 10001),
		`{"name":"\u0000"}`,
		`{"mfa_required_roles":["admin","a\u0000b"]}`,
		`{"enabled":true,"config":{"a":[{"b":"\u0000"}]}}`,
		`{"config":{"\u0000":1}}`,
		`{"name":"\\u0000"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, newDst := range []func() any{
			func() any { return &httpapi.SignupRequest{} },
			func() any { return &httpapi.UpdateTenantRequest{} },
			func() any { return &httpapi.PutPluginRequest{} },
		} {
			dst := newDst()
			err := httpapi.DecodeBody(body, dst)
			if err != nil {
				requireClientProblem(t, err)
				continue
			}
			again, err := json.Marshal(dst)
			require.NoError(t, err)
			// Whatever is accepted can be stored: Postgres text and jsonb
			// hold no NUL character.
			var generic any
			require.NoError(t, json.Unmarshal(again, &generic))
			require.False(t, holdsNUL(generic), "a NUL character got through in %q", body)
			dst2 := newDst()
			require.NoError(t, httpapi.DecodeBody(again, dst2), "re-decoding %s", again)
			require.Equal(t, dst, dst2)
		}
	})
}

// holdsNUL reports whether a decoded JSON value has a NUL character in any
// string or object key.
func holdsNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.ContainsRune(x, 0)
	case []any:
		for _, e := range x {
			if holdsNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, 0) || holdsNUL(e) {
				return true
			}
		}
	}
	return false
}

func TestDecodeBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string
		dst        any
		wantStatus int
		wantField  string
		wantDetail string
	}{
		{name: "unknown field", body: `{"email":"a@uni.test","nickname":"al"}`, dst: &httpapi.SignupRequest{}, wantStatus: 422, wantField: "nickname", wantDetail: `unknown field "nickname"`},
		{name: "wrong type", body: `{"email":5}`, dst: &httpapi.SignupRequest{}, wantStatus: 422, wantField: "email", wantDetail: "email: must be a string, not number"},
		{name: "wrong type for a boolean", body: `{"self_signup":"yes"}`, dst: &httpapi.UpdateTenantRequest{}, wantStatus: 422, wantField: "self_signup", wantDetail: "must be a boolean"},
		{name: "wrong element type", body: `{"mfa_required_roles":[1]}`, dst: &httpapi.UpdateTenantRequest{}, wantStatus: 422, wantField: "mfa_required_roles", wantDetail: "must be a string"},
		{name: "trailing garbage", body: `{"email":"a@uni.test"} x`, dst: &httpapi.SignupRequest{}, wantStatus: 400, wantDetail: "exactly one JSON value"},
		{name: "two objects", body: `{} {}`, dst: &httpapi.SignupRequest{}, wantStatus: 400, wantDetail: "exactly one JSON value"},
		{name: "empty", body: ``, dst: &httpapi.SignupRequest{}, wantStatus: 400, wantDetail: "empty"},
		{name: "only whitespace", body: " \n\t", dst: &httpapi.SignupRequest{}, wantStatus: 400, wantDetail: "empty"},
		{name: "cut short", body: `{"email":"a@uni`, dst: &httpapi.SignupRequest{}, wantStatus: 400, wantDetail: "ends too early"},
		{name: "not JSON", body: `email=a@uni.test`, dst: &httpapi.SignupRequest{}, wantStatus: 400, wantDetail: "not valid JSON"},
		{name: "an array, not an object", body: `[]`, dst: &httpapi.SignupRequest{}, wantStatus: 400, wantDetail: "must be a JSON object"},
		{name: "NUL in a string", body: `{"email":"a\u0000@uni.test"}`, dst: &httpapi.SignupRequest{}, wantStatus: 422, wantField: "email", wantDetail: "NUL character"},
		{name: "NUL in a list", body: `{"mfa_required_roles":["admin","\u0000"]}`, dst: &httpapi.UpdateTenantRequest{}, wantStatus: 422, wantField: "mfa_required_roles[1]", wantDetail: "NUL character"},
		{name: "NUL deep in raw JSON", body: `{"enabled":true,"config":{"a":[1,{"b":"x\u0000"}]}}`, dst: &httpapi.PutPluginRequest{}, wantStatus: 422, wantField: "config.a[1].b", wantDetail: "NUL character"},
		{name: "NUL in a key of raw JSON", body: `{"enabled":true,"config":{"k\u0000":1}}`, dst: &httpapi.PutPluginRequest{}, wantStatus: 422, wantField: `config.k\u0000`, wantDetail: "NUL character"},
		{name: "NUL after other values", body: `{"enabled":true,"config":{"a":{"b":[]},"c":"\u0000"}}`, dst: &httpapi.PutPluginRequest{}, wantStatus: 422, wantField: "config.c", wantDetail: "NUL character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := httpapi.DecodeBody([]byte(tt.body), tt.dst)
			p := requireClientProblem(t, err)
			require.Equal(t, tt.wantStatus, p.Status)
			require.Contains(t, p.Detail, tt.wantDetail)
			if tt.wantField != "" {
				require.Equal(t, tt.wantField, p.Errors[0].Field)
			} else {
				require.Empty(t, p.Errors)
			}
		})
	}

	t.Run("valid", func(t *testing.T) {
		t.Parallel()
		var req httpapi.UpdateTenantRequest
		require.NoError(t, httpapi.DecodeBody([]byte(` {"name":"Uni","self_signup":false,"mfa_required_roles":["admin"]} `+"\n"), &req))
		require.Equal(t, "Uni", *req.Name)
		require.False(t, *req.SelfSignup)
		require.Equal(t, []string{"admin"}, *req.MFARequiredRoles)
	})

	t.Run("an escaped backslash before u0000 is no NUL", func(t *testing.T) {
		t.Parallel()
		var req httpapi.UpdateTenantRequest
		require.NoError(t, httpapi.DecodeBody([]byte(`{"name":"C:\\u0000"}`), &req))
		require.Equal(t, `C:\u0000`, *req.Name)
	})
}
