package console

import (
	"encoding/json"
	"html/template"
	"slices"
	"strings"
	"time"
)

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"str":  str,
	"strs": strs,
	"join": strings.Join,
	"has":  func(list []string, x string) bool { return slices.Contains(list, x) },
	"get": func(m map[string]any, k string) any {
		if m == nil {
			return nil
		}
		return m[k]
	},
	"objs":  objects,
	"title": labelFor,
	"list":  func(xs ...string) []string { return xs },
	"when": func(v any) string {
		s, _ := v.(string)
		if s == "" {
			return "—"
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return s
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"short": func(v any) string {
		s := str(v)
		if len(s) > 8 {
			return s[:8]
		}
		return s
	},
	"pretty": func(v any) string {
		if v == nil {
			return ""
		}
		j, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return ""
		}
		return string(j)
	},
	"truthy": func(v any) bool {
		b, _ := v.(bool)
		return b
	},
	"fieldID": func(s string) string { return "f-" + strings.NewReplacer(".", "-", "[", "-", "]", "").Replace(s) },
	"dict": func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			k, _ := kv[i].(string)
			m[k] = kv[i+1]
		}
		return m
	},
}
