package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Draft is the JSON Schema dialect JSONSchema writes.
const Draft = "https://json-schema.org/draft/2020-12/schema"

const defsRef = "#/$defs/"

// JSONSchema converts an OpenAPI 3.0 schema object (JSON) and the component
// schemas it may refer to (a JSON object by name; nil for none) into one
// self-contained JSON Schema 2020-12 document: references point into
// "$defs", "nullable" becomes a type list, boolean exclusive bounds become
// numeric ones. strict refuses properties an object does not declare
// (additionalProperties: false unless the schema says otherwise), as a
// request body or a configuration must.
func JSONSchema(root, components []byte, strict bool) ([]byte, error) {
	var r any
	if err := json.Unmarshal(root, &r); err != nil {
		return nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	obj, ok := r.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a schema must be a JSON object")
	}
	var comps map[string]any
	if len(bytes.TrimSpace(components)) > 0 {
		if err := json.Unmarshal(components, &comps); err != nil {
			return nil, fmt.Errorf("components are not a JSON object: %w", err)
		}
	}
	out := convert(obj, strict).(map[string]any)
	// Only the components reachable from the root, converted the same way.
	defs := map[string]any{}
	queue := refsIn(obj, nil)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if _, done := defs[name]; done {
			continue
		}
		c, ok := comps[name].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("the schema refers to component %q, which is not defined", name)
		}
		defs[name] = convert(c, strict)
		queue = refsIn(c, queue)
	}
	if len(defs) > 0 {
		out["$defs"] = defs
	}
	out["$schema"] = Draft
	return json.Marshal(out)
}

// JSONSchemaOf is JSONSchema for a schema the Generator made.
func JSONSchemaOf(ref *openapi3.SchemaRef, components openapi3.Schemas, strict bool) ([]byte, error) {
	root, err := json.Marshal(ref)
	if err != nil {
		return nil, err
	}
	comps, err := json.Marshal(components)
	if err != nil {
		return nil, err
	}
	return JSONSchema(root, comps, strict)
}

// refsIn appends the component names v refers to.
func refsIn(v any, acc []string) []string {
	switch x := v.(type) {
	case map[string]any:
		if ref, ok := x["$ref"].(string); ok && strings.HasPrefix(ref, ComponentRef) {
			acc = append(acc, strings.TrimPrefix(ref, ComponentRef))
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k != "enum" && k != "default" && k != "example" {
				acc = refsIn(x[k], acc)
			}
		}
	case []any:
		for _, e := range x {
			acc = refsIn(e, acc)
		}
	}
	return acc
}

// subschemaMaps and subschemaLists are the keywords whose values are
// schemas (by name, or in a list).
var (
	subschemaMaps  = []string{"properties"}
	subschemaLists = []string{"allOf", "anyOf", "oneOf"}
	subschemaOne   = []string{"items", "not", "additionalProperties"}
	openAPIOnly    = []string{"nullable", "example", "discriminator", "xml", "externalDocs"}
)

func convert(v any, strict bool) any {
	s, ok := v.(map[string]any)
	if !ok {
		return v // a boolean schema
	}
	out := make(map[string]any, len(s)+1)
	for k, x := range s {
		out[k] = x
	}
	if ref, ok := out["$ref"].(string); ok && strings.HasPrefix(ref, ComponentRef) {
		out["$ref"] = defsRef + strings.TrimPrefix(ref, ComponentRef)
	}
	for _, k := range subschemaMaps {
		if m, ok := out[k].(map[string]any); ok {
			c := make(map[string]any, len(m))
			for name, sub := range m {
				c[name] = convert(sub, strict)
			}
			out[k] = c
		}
	}
	for _, k := range subschemaLists {
		if l, ok := out[k].([]any); ok {
			c := make([]any, len(l))
			for i, sub := range l {
				c[i] = convert(sub, strict)
			}
			out[k] = c
		}
	}
	for _, k := range subschemaOne {
		if sub, ok := out[k]; ok {
			out[k] = convert(sub, strict)
		}
	}
	for _, bound := range [][2]string{{"exclusiveMinimum", "minimum"}, {"exclusiveMaximum", "maximum"}} {
		if ex, ok := out[bound[0]].(bool); ok {
			delete(out, bound[0])
			if ex {
				out[bound[0]] = out[bound[1]]
				delete(out, bound[1])
			}
		}
	}
	nullable, _ := s["nullable"].(bool)
	for _, k := range openAPIOnly {
		delete(out, k)
	}
	// A wrapper of a reference (allOf) declares no properties of its own:
	// the referenced schema's are checked there.
	_, composed := out["allOf"]
	if strict && out["additionalProperties"] == nil && (out["type"] == "object" && !composed || out["properties"] != nil) {
		out["additionalProperties"] = false
	}
	if !nullable {
		return out
	}
	if t, ok := out["type"].(string); ok && !composed {
		out["type"] = []any{t, "null"}
		if e, ok := out["enum"].([]any); ok {
			out["enum"] = append(e, nil)
		}
		return out
	}
	// A reference or a composition (which null does not match): null or
	// the schema.
	return map[string]any{"anyOf": []any{map[string]any{"type": "null"}, out}}
}

// Compile compiles a JSON Schema document. name identifies it in errors;
// formats (uuid, date-time, email...) are asserted, not just noted.
func Compile(name string, doc []byte) (*jsonschema.Schema, error) {
	d, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("%s: schema is not JSON: %w", name, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.DefaultDraft(jsonschema.Draft2020)
	url := "edulure:///schemas/" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, name) + ".json"
	if err := c.AddResource(url, d); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("%s: schema does not compile: %w", name, err)
	}
	return s, nil
}
