package wire

import (
	"bytes"
	"fmt"

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
