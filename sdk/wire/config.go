package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/edulure/edulure/sdk/schema"
)

// CompileConfig compiles a plugin's configuration schema (JSON Schema, as
// the manifest carries it).
func CompileConfig(plugin string, js []byte) (*jsonschema.Schema, error) {
	s, err := schema.Compile("config "+plugin, js)
	if err != nil {
		return nil, fmt.Errorf("config schema: %w", err)
	}
	return s, nil
}

// CheckConfig checks a configuration (a JSON object: an institution's
// settings, or the operator's block in plugins.hcl) against a plugin's
// compiled configuration schema, naming each wrong setting under root
// ("config.label"). A plugin without a schema (s nil) takes no
// configuration: only an empty object passes.
func CheckConfig(s *jsonschema.Schema, cfg []byte, root string) []schema.Violation {
	if len(bytes.TrimSpace(cfg)) == 0 {
		cfg = []byte("{}") // none given
	}
	doc, err := schema.Decode(cfg)
	if err != nil {
		return []schema.Violation{{Field: root, Message: "must be a JSON object"}}
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return []schema.Violation{{Field: root, Message: "must be a JSON object"}}
	}
	if s == nil {
		if len(obj) > 0 {
			return []schema.Violation{{Field: root, Message: "this plugin takes no configuration"}}
		}
		return nil
	}
	return schema.Validate(s, doc, root)
}

// ConfigSecrets lists, sorted, the secret settings of a configuration
// schema (JSON Schema, as the manifest carries it): its top-level
// properties marked writeOnly (the SDK's secret:"true" tag), or holding a
// writeOnly schema anywhere inside them, since a setting is stored and
// shown as a whole. The kernel seals them at rest, never shows them back,
// and delivers them to the plugin only inside its configuration.
//
// Since: v1.2
func ConfigSecrets(js []byte) []string {
	var root map[string]any
	if json.Unmarshal(js, &root) != nil {
		return nil
	}
	props := map[string]any{}
	collect := func(s any) {
		if m, ok := s.(map[string]any); ok {
			if p, ok := m["properties"].(map[string]any); ok {
				maps.Copy(props, p)
			}
		}
	}
	collect(root)
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		if l, ok := root[k].([]any); ok {
			for _, s := range l {
				collect(s)
			}
		}
	}
	var out []string
	for name, p := range props {
		if holdsWriteOnly(root, p, map[string]bool{}) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// holdsWriteOnly reports whether schema s, or a schema inside it (local
// references followed), says writeOnly: true.
func holdsWriteOnly(root map[string]any, s any, seen map[string]bool) bool {
	switch x := s.(type) {
	case map[string]any:
		if w, _ := x["writeOnly"].(bool); w {
			return true
		}
		if ref, ok := x["$ref"].(string); ok && strings.HasPrefix(ref, "#/") && !seen[ref] {
			seen[ref] = true
			if holdsWriteOnly(root, pointer(root, ref), seen) {
				return true
			}
		}
		for k, v := range x {
			switch k {
			case "enum", "const", "default", "examples", "example":
				continue // values, not schemas
			}
			if holdsWriteOnly(root, v, seen) {
				return true
			}
		}
	case []any:
		for _, v := range x {
			if holdsWriteOnly(root, v, seen) {
				return true
			}
		}
	}
	return false
}

// pointer resolves a local JSON pointer ("#/$defs/smtp") in root; nil when
// it points nowhere.
func pointer(root map[string]any, ref string) any {
	var cur any = root
	for _, tok := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[tok]
	}
	return cur
}
