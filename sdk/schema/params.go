package schema

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// NewInlineGenerator returns a Generator that writes every schema inline,
// without components: for documents that stand alone (an event's data, a
// configuration).
func NewInlineGenerator() *Generator { return newInlineGenerator(nil) }

// Param is one query parameter of a query struct.
type Param struct {
	Name        string
	Schema      *openapi3.Schema
	Required    bool
	Description string
}

// Params lists the query parameters a struct value declares, in field
// order: each exported field, named by its `query` tag, else its json name,
// with its schema from the same tags as bodies. A parameter is a scalar or
// a list of scalars (the parameter repeated), and optional unless tagged
// required:"true".
func Params(v any) ([]Param, error) {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("query parameters are declared by a struct value, not %T", v)
	}
	g := newInlineGenerator(QueryName)
	ref, err := g.gen.GenerateSchemaRef(t)
	if err != nil {
		return nil, fmt.Errorf("query parameters of %s: %w", t, err)
	}
	clearTypeRefs(ref)
	var out []Param
	for _, f := range jsonFields(t, QueryName) {
		p := ref.Value.Properties[f.name]
		if p == nil || p.Value == nil {
			continue
		}
		s := p.Value
		elem := s
		if s.Type.Is("array") && s.Items != nil && s.Items.Value != nil {
			elem = s.Items.Value
		}
		if !elem.Type.Is("string") && !elem.Type.Is("integer") && !elem.Type.Is("number") && !elem.Type.Is("boolean") {
			return nil, fmt.Errorf("query parameter %q of %s: must be a string, number or boolean (or a list of them)", f.name, t)
		}
		desc := s.Description
		s.Description = ""
		s.Nullable = false
		out = append(out, Param{Name: f.name, Schema: s, Required: f.tag.Get("required") == "true", Description: desc})
	}
	return out, nil
}

// QueryName names a query struct's field: its `query` tag, else its json
// name.
func QueryName(f reflect.StructField) (string, bool) {
	if q, ok := f.Tag.Lookup("query"); ok && q != "" && q != "-" {
		return q, true
	}
	if j, _, _ := strings.Cut(f.Tag.Get("json"), ","); j != "" && j != "-" {
		return j, true
	}
	return "", false
}
