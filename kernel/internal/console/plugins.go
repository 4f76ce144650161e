package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// plugins lists the installed plugins with their state for the
// institution.
func (c *Console) plugins(q *req) {
	res := q.get("/api/v1/tenant/plugins")
	if !res.ok() {
		q.apiFail(res)
		return
	}
	q.render(http.StatusOK, "plugins", view{Title: "Plugins", Nav: "plugins", Data: map[string]any{"plugins": res.items()}})
}

// tenantPlugin is one plugin's view for the institution.
func (q *req) tenantPlugin(name string) (map[string]any, *apiResult) {
	res := q.get("/api/v1/tenant/plugins")
	if !res.ok() {
		return nil, res
	}
	for _, p := range res.items() {
		if str(p["name"]) == name {
			return p, res
		}
	}
	return nil, &apiResult{Status: http.StatusNotFound, Problem: &apiProblem{Status: 404, Detail: "no plugin named " + name + " is installed"}}
}

func (c *Console) setPluginEnabled(q *req) {
	name := q.r.PathValue("name")
	on := q.r.PostFormValue("enabled") == "true"
	res := q.call(http.MethodPut, "/api/v1/tenant/plugins/"+pathEscape(name), map[string]any{"enabled": on})
	if !res.ok() {
		q.redirect(Prefix+"/plugins", "Could not change "+name+": "+res.message())
		return
	}
	state := "disabled"
	if on {
		state = "enabled"
	}
	q.redirect(q.back(Prefix+"/plugins"), name+" is now "+state+" for your institution.")
}

// field is one setting of a plugin's form, made from its JSON Schema.
type field struct {
	Name        string // the property
	Label       string
	Help        string
	Kind        string // text, number, integer, checkbox, select, lines, json, secret
	Value       string
	Checked     bool
	Options     []string
	Required    bool
	Secret      bool
	SecretSet   bool
	SecretWhen  string
	Placeholder string
}

// settingsFields makes the form's fields from a plugin's config_schema,
// filled with the stored settings (or the posted ones).
func settingsFields(p map[string]any, posted url.Values) []field {
	schema, _ := p["config_schema"].(map[string]any)
	config, _ := p["config"].(map[string]any)
	secrets, _ := p["secrets"].(map[string]any)
	return schemaFields(schema, config, secrets, posted)
}

// schemaFields makes form fields from an object's JSON Schema: one per
// property, by its type; values are the current ones, secrets say which
// secret (writeOnly) properties are set, posted fills the form again.
func schemaFields(schema, values, secrets map[string]any, posted url.Values) []field {
	props, _ := schema["properties"].(map[string]any)
	required := strs(schema["required"])
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	// Required fields first, then by name.
	sort.Slice(names, func(i, j int) bool {
		ri, rj := slices.Contains(required, names[i]), slices.Contains(required, names[j])
		if ri != rj {
			return ri
		}
		return names[i] < names[j]
	})
	out := make([]field, 0, len(names))
	for _, n := range names {
		ps, _ := props[n].(map[string]any)
		ps = resolve(schema, ps)
		if ps["readOnly"] == true {
			continue
		}
		f := field{Name: n, Label: labelFor(n), Help: str(ps["description"])}
		for _, r := range required {
			f.Required = f.Required || r == n
		}
		cur, has := values[n]
		if !has {
			cur = ps["default"]
		}
		typ := str(ps["type"])
		switch {
		case ps["writeOnly"] == true:
			f.Kind, f.Secret = "secret", true
			if sv, ok := secrets[n].(map[string]any); ok {
				f.SecretSet = sv["set"] == true
				f.SecretWhen = str(sv["changed_at"])
			}
		case ps["enum"] != nil:
			f.Kind, f.Options, f.Value = "select", enumStrings(ps["enum"]), str(cur)
		case typ == "boolean":
			f.Kind, f.Checked = "checkbox", cur == true
		case typ == "integer" || typ == "number":
			f.Kind, f.Value = typ, str(cur)
		case typ == "string":
			f.Kind, f.Value = "text", str(cur)
		case typ == "array" && itemType(schema, ps) == "string":
			f.Kind, f.Value = "lines", strings.Join(strs(cur), "\n")
		default:
			f.Kind = "json"
			if cur != nil {
				j, _ := json.MarshalIndent(cur, "", "  ")
				f.Value = string(j)
			}
		}
		if posted != nil && !f.Secret {
			f.Value = posted.Get("config." + n)
			f.Checked = posted.Get("config."+n) == "true"
		}
		out = append(out, f)
	}
	return out
}

// formValues turns a posted form into the JSON object the fields describe.
// Values are converted by the schema's types where they can be; where they
// cannot, they are sent as typed, so that the API's 422 names the field
// and says what is wrong, and the form shows it there. An empty field is
// left out (the default applies); with allSecrets, a secret left empty
// keeps its stored value and "clear" sends null.
func formValues(fields []field, form url.Values, allSecrets bool) map[string]any {
	out := map[string]any{}
	for _, f := range fields {
		raw := form.Get("config." + f.Name)
		switch f.Kind {
		case "secret":
			if allSecrets && form.Get("clear."+f.Name) == "true" {
				out[f.Name] = nil
			} else if raw != "" {
				out[f.Name] = raw
			}
			continue
		case "checkbox":
			out[f.Name] = raw == "true"
			continue
		}
		if strings.TrimSpace(raw) == "" {
			continue
		}
		switch f.Kind {
		case "integer":
			if n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64); err == nil {
				out[f.Name] = n
			} else {
				out[f.Name] = raw
			}
		case "number":
			if n, err := strconv.ParseFloat(strings.TrimSpace(raw), 64); err == nil {
				out[f.Name] = n
			} else {
				out[f.Name] = raw
			}
		case "lines":
			items := []string{}
			for _, l := range strings.Split(raw, "\n") {
				if l = strings.TrimSpace(l); l != "" {
					items = append(items, l)
				}
			}
			out[f.Name] = items
		case "json":
			var v any
			if json.Unmarshal([]byte(raw), &v) == nil {
				out[f.Name] = v
			} else {
				out[f.Name] = raw
			}
		default:
			out[f.Name] = raw
		}
	}
	return out
}

// resolve follows a local $ref of the schema.
func resolve(root, s map[string]any) map[string]any {
	ref, _ := s["$ref"].(string)
	for _, prefix := range []string{"#/$defs/", "#/definitions/"} {
		if name, ok := strings.CutPrefix(ref, prefix); ok {
			defs, _ := root[strings.TrimSuffix(strings.TrimPrefix(prefix, "#/"), "/")].(map[string]any)
			if d, ok := defs[name].(map[string]any); ok {
				return d
			}
		}
	}
	return s
}

func itemType(root, s map[string]any) string {
	items, _ := s["items"].(map[string]any)
	return str(resolve(root, items)["type"])
}

func enumStrings(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		out = append(out, str(x))
	}
	return out
}

// labelFor turns a property name into a label: default_pass_mark → Default pass mark.
func labelFor(n string) string {
	s := strings.ReplaceAll(n, "_", " ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func (c *Console) pluginSettings(q *req) {
	p, res := q.tenantPlugin(q.r.PathValue("name"))
	if p == nil {
		q.apiFail(res)
		return
	}
	q.render(http.StatusOK, "settings", view{Title: str(p["name"]) + " settings", Nav: "plugins", Data: map[string]any{"plugin": p, "fields": settingsFields(p, nil)}})
}

// savePluginSettings sends the form as the plugin's configuration. Values
// are converted by the schema's types where they can be; where they
// cannot, they are sent as typed, so that the API's 422 names the field
// and says what is wrong, and the form shows it there.
func (c *Console) savePluginSettings(q *req) {
	name := q.r.PathValue("name")
	p, res := q.tenantPlugin(name)
	if p == nil {
		q.apiFail(res)
		return
	}
	form := q.r.PostForm
	config := formValues(settingsFields(p, nil), form, true)
	enabled, _ := p["enabled"].(bool)
	out := q.call(http.MethodPut, "/api/v1/tenant/plugins/"+pathEscape(name), map[string]any{"enabled": enabled, "config": config})
	if !out.ok() {
		fields := topFields(out.fields(), "config.")
		var other []string
		for k, v := range out.fields() {
			if !strings.HasPrefix(k, "config.") {
				other = append(other, k+": "+v)
			}
		}
		msg := "The settings were not saved. Correct the fields marked below."
		if len(fields) == 0 {
			msg = "The settings were not saved: " + out.message()
		} else if len(other) > 0 {
			msg += " " + strings.Join(other, "; ")
		}
		q.render(statusFor(out), "settings", view{Title: name + " settings", Nav: "plugins", Error: msg, Fields: fields,
			Data: map[string]any{"plugin": p, "fields": settingsFields(p, form)}})
		return
	}
	q.redirect(Prefix+"/plugins/"+pathEscape(name)+"/settings", "The settings of "+name+" were saved.")
}
