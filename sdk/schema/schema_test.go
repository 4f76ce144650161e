package schema

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

type maybe[T any] struct {
	set   bool
	value *T
}

func (maybe[T]) WrappedType() reflect.Type { return reflect.TypeFor[T]() }

type status string

func (status) Enum() []string { return []string{"draft", "published"} }

type asset struct {
	URL  string `json:"url" maxLength:"2000" format:"uri"`
	Size int64  `json:"size_bytes" minimum:"0"`
}

type course struct {
	ID          string     `json:"id" format:"uuid"`
	Title       string     `json:"title" minLength:"1" maxLength:"200" doc:"The course's title."`
	Status      status     `json:"status"`
	PassMark    *int       `json:"pass_mark" minimum:"0" maximum:"100"`
	Instructors []string   `json:"instructors" format:"uuid" maxItems:"20"`
	Assets      []asset    `json:"assets"`
	Cover       *asset     `json:"cover"`
	Published   *time.Time `json:"published_at,omitempty"`
	Note        string     `json:"note,omitempty" enum:"a,b"`
	Internal    string     `json:"-"`
}

type patch struct {
	Title    maybe[string] `json:"title" maxLength:"200"`
	PassMark maybe[int]    `json:"pass_mark" maximum:"100"`
}

func generate(t *testing.T, v any) (map[string]any, map[string]any) {
	t.Helper()
	g := NewGenerator("t.")
	ref, err := g.Schema(v)
	require.NoError(t, err)
	var root, comps map[string]any
	b, _ := json.Marshal(ref)
	require.NoError(t, json.Unmarshal(b, &root))
	b, _ = json.Marshal(g.Components())
	require.NoError(t, json.Unmarshal(b, &comps))
	return root, comps
}

func TestGenerator(t *testing.T) {
	t.Parallel()
	root, comps := generate(t, course{})
	require.Equal(t, "#/components/schemas/t.course", root["$ref"])
	c := comps["t.course"].(map[string]any)
	require.ElementsMatch(t, []any{"id", "title", "status", "pass_mark", "instructors", "assets", "cover"}, c["required"])
	props := c["properties"].(map[string]any)
	require.Equal(t, map[string]any{"type": "string", "format": "uuid"}, props["id"])
	require.Equal(t, map[string]any{"type": "string", "minLength": 1.0, "maxLength": 200.0, "description": "The course's title."}, props["title"])
	require.Equal(t, map[string]any{"type": "string", "enum": []any{"draft", "published"}}, props["status"])
	require.Equal(t, map[string]any{"type": "integer", "nullable": true, "minimum": 0.0, "maximum": 100.0}, props["pass_mark"])
	require.Equal(t, map[string]any{"type": "array", "maxItems": 20.0, "items": map[string]any{"type": "string", "format": "uuid"}}, props["instructors"])
	require.Equal(t, map[string]any{"type": "array", "items": map[string]any{"$ref": "#/components/schemas/t.asset"}}, props["assets"])
	require.Equal(t, map[string]any{"type": "object", "nullable": true, "allOf": []any{map[string]any{"$ref": "#/components/schemas/t.asset"}}}, props["cover"])
	require.NotContains(t, props, "Internal")
	a := comps["t.asset"].(map[string]any)
	require.ElementsMatch(t, []any{"url", "size_bytes"}, a["required"])

	root, _ = generate(t, patch{})
	p := root["$ref"].(string)
	require.Equal(t, "#/components/schemas/t.patch", p)
	_, comps = generate(t, patch{})
	pp := comps["t.patch"].(map[string]any)
	require.Nil(t, pp["required"])
	require.Equal(t, map[string]any{"type": "string", "nullable": true, "maxLength": 200.0}, pp["properties"].(map[string]any)["title"])
}

// level is written as text ("easy"), not as the integer it is.
type level int

func (l level) MarshalText() ([]byte, error) { return []byte([]string{"easy", "hard"}[l]), nil }

// Types that encode themselves as JSON text are strings, not their Go
// kind: a uuid.UUID is a [16]byte.
func TestGeneratorTextTypes(t *testing.T) {
	t.Parallel()
	type ids struct {
		ID     uuid.UUID   `json:"id"`
		Parent *uuid.UUID  `json:"parent"`
		Tags   []uuid.UUID `json:"tags"`
		Level  level       `json:"level" doc:"How hard."`
		When   time.Time   `json:"when"`
	}
	_, comps := generate(t, ids{})
	props := comps["t.ids"].(map[string]any)["properties"].(map[string]any)
	require.Equal(t, map[string]any{"type": "string", "format": "uuid"}, props["id"])
	require.Equal(t, map[string]any{"type": "string", "format": "uuid", "nullable": true}, props["parent"])
	require.Equal(t, map[string]any{"type": "array", "items": map[string]any{"type": "string", "format": "uuid"}}, props["tags"])
	require.Equal(t, map[string]any{"type": "string", "description": "How hard."}, props["level"])
	require.Equal(t, map[string]any{"type": "string", "format": "date-time"}, props["when"])
}

func TestValidate(t *testing.T) {
	t.Parallel()
	g := NewGenerator("t.")
	ref, err := g.Schema(course{})
	require.NoError(t, err)
	js, err := JSONSchemaOf(ref, g.Components(), true)
	require.NoError(t, err)
	s, err := Compile("course", js)
	require.NoError(t, err)

	check := func(body string) []Violation {
		doc, err := Decode([]byte(body))
		require.NoError(t, err)
		return Validate(s, doc, "")
	}
	good := `{"id":"0190d0e4-5b8e-7c1a-9c3e-1f2a3b4c5d6e","title":"Go","status":"draft","pass_mark":null,"instructors":[],"assets":[{"url":"https://x.test/a","size_bytes":3}],"cover":null}`
	require.Empty(t, check(good))
	require.Equal(t, []Violation{
		{Field: "assets", Message: "is required"},
		{Field: "colour", Message: "is not a known field"},
		{Field: "cover", Message: "is required"},
		{Field: "id", Message: "must be a UUID"},
		{Field: "instructors", Message: "is required"},
		{Field: "pass_mark", Message: "must be at most 100"},
		{Field: "status", Message: "must be one of: draft, published"},
		{Field: "title", Message: "must be at least 1 character long"},
	}, check(`{"id":"nope","title":"","status":"gone","pass_mark":101,"colour":"red"}`))
	require.Equal(t, []Violation{
		{Field: "cover.url", Message: "must be a string"},
		{Field: "title", Message: "must not contain NUL characters (\\u0000)"},
	}, check(`{"id":"0190d0e4-5b8e-7c1a-9c3e-1f2a3b4c5d6e","title":"a\u0000b","status":"draft","pass_mark":1,"instructors":[],"assets":[],"cover":{"url":5,"size_bytes":1}}`))
}

func TestAnonymousStructIsInline(t *testing.T) {
	t.Parallel()
	root, comps := generate(t, struct {
		Items []asset `json:"items"`
	}{})
	require.Equal(t, "object", root["type"], "an anonymous struct is not a component")
	require.Contains(t, comps, "t.asset")
	require.NotContains(t, comps, "t.")
}

type grade struct {
	Score int `json:"score"`
}

type submission struct {
	ID string `json:"id"`
	*grade
}

func TestEmbeddedPointerFieldsAreOptional(t *testing.T) {
	t.Parallel()
	_, comps := generate(t, submission{})
	require.Equal(t, []any{"id"}, comps["t.submission"].(map[string]any)["required"], "a nil *grade leaves score out")
}
