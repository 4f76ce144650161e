package wire

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

func fuzzRoute(t testing.TB) *Contract {
	r := &pluginv1.Route{
		Method: "POST", Path: "/api/v1/things/{id}",
		RequestSchemaJson: []byte(`{"$ref":"#/components/schemas/x.New"}`),
		QueryParams: []*pluginv1.QueryParam{
			{Name: "limit", SchemaJson: []byte(`{"type":"integer","minimum":1,"maximum":100}`)},
			{Name: "tag", SchemaJson: []byte(`{"type":"array","items":{"type":"string","maxLength":5}}`)},
			{Name: "on", SchemaJson: []byte(`{"type":"boolean"}`), Required: true},
		},
	}
	comps := []byte(`{"x.New":{"type":"object","required":["name"],"properties":{
		"name":{"type":"string","minLength":1,"maxLength":10},
		"count":{"type":"integer","nullable":true,"minimum":0},
		"owner":{"type":"string","format":"uuid"},
		"items":{"type":"array","maxItems":3,"items":{"type":"object","properties":{"k":{"type":"string"}}}}}}}`)
	c, err := CompileContract(r, comps)
	require.NoError(t, err)
	return c
}

// FuzzContract: whatever a client sends, Check answers without panicking,
// refuses with a 400 or a 422 that names fields, and what it lets through
// is what the schemas allow.
func FuzzContract(f *testing.F) {
	for _, seed := range [][2]string{
		{"on=true&limit=5&tag=a", `{"name":"lamp"}`},
		{"on=maybe&limit=0&limit=1", `{"name":"","count":-1,"owner":"x","items":[{},{},{},{}],"extra":1}`},
		{"on=true", `{"name":"a\u0000"}`},
		{"on=true&tag=%00", `[`},
		{"", ``},
	} {
		f.Add(seed[0], seed[1])
	}
	c := fuzzRoute(f)
	f.Fuzz(func(t *testing.T, rawQuery, body string) {
		q, _ := url.ParseQuery(rawQuery)
		out, err := c.Check(map[string]string{"id": "7"}, q, []byte(body))
		if err != nil {
			r, ok := err.(*Refusal)
			require.True(t, ok, "a refusal, not %T", err)
			require.Contains(t, []int{400, 422}, r.Kind.Status)
			if r.Kind.Status == 422 {
				require.NotEmpty(t, r.Fields)
			}
			return
		}
		for name := range out {
			require.Contains(t, []string{"limit", "tag", "on"}, name, "only declared parameters go through")
		}
		var v map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &v), "an accepted body is a JSON object")
		name, _ := v["name"].(string)
		require.NotEmpty(t, name)
		require.False(t, strings.ContainsRune(name, 0))
	})
}

// TestContractRefusesABodyNotUTF8: a JSON body with bytes that are not
// UTF-8 is a 400, not a string quietly holding U+FFFD.
func TestContractRefusesABodyNotUTF8(t *testing.T) {
	c := fuzzRoute(t)
	_, err := c.Check(map[string]string{"id": "1"}, url.Values{"on": {"true"}}, []byte("{\"name\":\"l\xffmp\"}"))
	var r *Refusal
	require.ErrorAs(t, err, &r)
	require.Equal(t, 400, r.Kind.Status)
	require.Contains(t, r.Detail, "not UTF-8")
	_, err = c.Check(map[string]string{"id": "1"}, url.Values{"on": {"true"}}, []byte(`{"name":"lämp"}`))
	require.NoError(t, err)
}
