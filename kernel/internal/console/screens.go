package console

import (
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A plugin's screens are made from its routes, as the OpenAPI document
// (GET /api/openapi.json) describes them; a plugin ships nothing else for
// the console (docs/console.md, "Plugin screens"):
//
//   - every GET route of the plugin whose answer is a list page (items and
//     next_cursor) is a list screen; its columns are the item schema's
//     scalar properties, its filters the route's query parameters;
//   - a list route with path parameters (GET /api/v1/courses/{course_id}/cohorts)
//     is reached from the rows of the list whose path it extends;
//   - a POST route on a list's path with a request schema is that list's
//     "New" form, generated from the schema like the settings forms, with
//     the API's 422 messages next to each field.
//
// Only the screens of plugins enabled for the institution, and whose
// permission (x-permission) the person holds, are shown.

// screen is one list screen.
type screen struct {
	Plugin  string
	ID      string // the GET operation's operationId
	Label   string // a short name from its path: "Courses", "Cohorts"
	Title   string // its summary
	Path    string // /api/v1/courses/{course_id}/cohorts
	Params  []string
	Query   []screenQuery
	Columns []string
	Perm    string
	Key     string      // the answer's list property: items, or another
	Create  *createForm // POST on the same path, if any
	Nested  []*screen   // lists under one row: Path + "/{x}/..."
	Actions []action    // POSTs on one row that need no body: Path + "/{x}/<verb>"
}

// action is a button on each row of a list: POST <list>/{x}/<verb>, whose
// request body is optional (or absent).
type action struct {
	Label string // Publish
	Path  string // /api/v1/courses/{course_id}/publish
	Param string // course_id
	Perm  string
}

type screenQuery struct{ Name, Help string }

type createForm struct {
	Path   string // the POST's path
	Title  string
	Perm   string
	Schema map[string]any
}

// screenLink is a screen in the navigation.
type screenLink struct {
	Plugin  string
	Screens []*screen
}

// screenCache keeps the screens parsed from one version of the document.
type screenCache struct {
	mu      sync.Mutex
	sum     [32]byte
	screens []*screen
}

var screensParsed screenCache

// allScreens reads the OpenAPI document and makes the screens from it.
func (c *Console) allScreens(q *req) []*screen {
	res := c.call(q.r, "", http.MethodGet, "/api/openapi.json", nil)
	if !res.ok() {
		return nil
	}
	sum := sha256.Sum256(res.Raw)
	screensParsed.mu.Lock()
	defer screensParsed.mu.Unlock()
	if sum == screensParsed.sum {
		return screensParsed.screens
	}
	var doc map[string]any
	if json.Unmarshal(res.Raw, &doc) != nil {
		return nil
	}
	screensParsed.sum, screensParsed.screens = sum, parseScreens(doc)
	return screensParsed.screens
}

func parseScreens(doc map[string]any) []*screen {
	paths, _ := doc["paths"].(map[string]any)
	byPath := map[string]*screen{}
	var all []*screen
	for path, item := range paths {
		ops, _ := item.(map[string]any)
		get, _ := ops["get"].(map[string]any)
		plugin, _ := get["x-plugin"].(string)
		if plugin == "" {
			continue
		}
		itemSchema, key := listItems(doc, get)
		if itemSchema == nil {
			continue
		}
		s := &screen{Plugin: plugin, ID: str(get["operationId"]), Title: str(get["summary"]), Path: path, Perm: str(get["x-permission"]), Columns: columns(doc, itemSchema), Key: key, Label: pathLabel(plugin, path)}
		for _, p := range objects(get["parameters"]) {
			switch str(p["in"]) {
			case "path":
				s.Params = append(s.Params, str(p["name"]))
			case "query":
				if n := str(p["name"]); n != "limit" && n != "cursor" {
					s.Query = append(s.Query, screenQuery{Name: n, Help: str(p["description"])})
				}
			}
		}
		byPath[path] = s
		all = append(all, s)
	}
	// Forms: a POST on a list's path, or on a path right under it with no
	// parameter of its own (POST /api/v1/leaderboard/points).
	for path, item := range paths {
		post, _ := asMap(item)["post"].(map[string]any)
		plugin, _ := post["x-plugin"].(string)
		if plugin == "" {
			continue
		}
		target := byPath[path]
		if target == nil {
			if i := strings.LastIndex(path, "/"); i > 0 && !strings.Contains(path[i:], "{") {
				target = byPath[path[:i]]
			}
		}
		if target == nil || target.Plugin != plugin || (target.Create != nil && target.Create.Path == target.Path) {
			continue
		}
		if sch := requestSchema(doc, post); sch != nil {
			target.Create = &createForm{Title: str(post["summary"]), Perm: str(post["x-permission"]), Schema: sch, Path: path}
		}
	}
	// Row actions: POST /a/{x}/verb with no required body, under list /a.
	for path, item := range paths {
		post, _ := asMap(item)["post"].(map[string]any)
		plugin, _ := post["x-plugin"].(string)
		if plugin == "" || asMap(post["requestBody"])["required"] == true {
			continue
		}
		parts := strings.Split(path, "/")
		if len(parts) < 3 {
			continue
		}
		verb, param := parts[len(parts)-1], parts[len(parts)-2]
		if strings.Contains(verb, "{") || !strings.HasPrefix(param, "{") || !strings.HasSuffix(param, "}") {
			continue
		}
		list := byPath[strings.Join(parts[:len(parts)-2], "/")]
		if list == nil || list.Plugin != plugin {
			continue
		}
		list.Actions = append(list.Actions, action{Label: labelFor(strings.NewReplacer("-", " ", "_", " ").Replace(verb)), Path: path,
			Param: strings.Trim(param, "{}"), Perm: str(post["x-permission"])})
	}
	for _, s := range byPath {
		sort.Slice(s.Actions, func(i, j int) bool { return s.Actions[i].Path < s.Actions[j].Path })
	}
	// Nest: /a/{x}/b under /a.
	for _, s := range all {
		if len(s.Params) == 0 {
			continue
		}
		i := strings.LastIndex(s.Path, "/{")
		if i < 0 {
			continue
		}
		// parent is the path before the last parameter that the screen's
		// path extends with exactly one parameter.
		head := s.Path[:i]
		rest := s.Path[i+1:]
		if strings.Count(s.Path, "{") != 1 || !strings.Contains(rest, "}/") {
			continue
		}
		if parent, ok := byPath[head]; ok && parent.Plugin == s.Plugin {
			parent.Nested = append(parent.Nested, s)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].Plugin != all[j].Plugin {
			return all[i].Plugin < all[j].Plugin
		}
		return all[i].Path < all[j].Path
	})
	for _, s := range all {
		sort.Slice(s.Nested, func(i, j int) bool { return s.Nested[i].Path < s.Nested[j].Path })
	}
	return all
}

// pathLabel names a list by its path's words: /api/v1/courses → Courses,
// /api/v1/telemetry/exports (telemetry's) → Exports,
// /api/v1/courses/{course_id}/cohorts → Cohorts.
func pathLabel(plugin, path string) string {
	var words []string
	for _, seg := range strings.Split(strings.TrimPrefix(path, "/api/v1/"), "/") {
		if seg == "" || strings.HasPrefix(seg, "{") {
			words = words[:0]
			continue
		}
		words = append(words, strings.NewReplacer("-", " ", "_", " ").Replace(seg))
	}
	if len(words) > 1 && words[0] == plugin {
		words = words[1:]
	}
	return labelFor(strings.Join(words, " "))
}

// deref follows a $ref into the document's components.
func deref(doc map[string]any, s map[string]any) map[string]any {
	for range 8 {
		ref, _ := s["$ref"].(string)
		if ref == "" {
			return s
		}
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		if !ok {
			return s
		}
		comps, _ := doc["components"].(map[string]any)
		schemas, _ := comps["schemas"].(map[string]any)
		next, _ := schemas[name].(map[string]any)
		if next == nil {
			return s
		}
		s = next
	}
	return s
}

// listItems is the item schema of an operation answering a list: a page
// (items and next_cursor), or an object with one array of objects (a
// leaderboard's entries).
func listItems(doc, op map[string]any) (map[string]any, string) {
	resps, _ := op["responses"].(map[string]any)
	ok, _ := resps["200"].(map[string]any)
	content, _ := ok["content"].(map[string]any)
	mt, _ := content["application/json"].(map[string]any)
	sch, _ := mt["schema"].(map[string]any)
	sch = deref(doc, sch)
	props, _ := sch["properties"].(map[string]any)
	key := ""
	if items, _ := props["items"].(map[string]any); items != nil && str(items["type"]) == "array" {
		key = "items"
	} else {
		var arrays []string
		for n, p := range props {
			ps := deref(doc, asMap(p))
			if str(ps["type"]) == "array" && str(deref(doc, asMap(ps["items"]))["type"]) == "object" {
				arrays = append(arrays, n)
			}
		}
		if len(arrays) != 1 {
			return nil, ""
		}
		key = arrays[0]
	}
	arr := deref(doc, asMap(props[key]))
	it := deref(doc, asMap(arr["items"]))
	if str(it["type"]) != "object" {
		return nil, ""
	}
	return it, key
}

func requestSchema(doc, op map[string]any) map[string]any {
	body, _ := op["requestBody"].(map[string]any)
	content, _ := body["content"].(map[string]any)
	mt, _ := content["application/json"].(map[string]any)
	sch, _ := mt["schema"].(map[string]any)
	sch = deref(doc, sch)
	if _, ok := sch["properties"].(map[string]any); !ok {
		return nil
	}
	return sch
}

// columns are an item's scalar properties, the telling ones first.
func columns(doc, item map[string]any) []string {
	props, _ := item["properties"].(map[string]any)
	first := []string{"title", "name", "email", "code", "status", "state"}
	var cols []string
	for n, p := range props {
		ps := deref(doc, asMap(p))
		switch str(ps["type"]) {
		case "string", "integer", "number", "boolean":
			if n != "tenant_id" && ps["writeOnly"] != true {
				cols = append(cols, n)
			}
		}
	}
	sort.Slice(cols, func(i, j int) bool {
		a, b := slices.Index(first, cols[i]), slices.Index(first, cols[j])
		if a < 0 {
			a = len(first)
		}
		if b < 0 {
			b = len(first)
		}
		if a != b {
			return a < b
		}
		if (cols[i] == "id") != (cols[j] == "id") {
			return cols[i] != "id" // the ID last: rows link by it
		}
		return cols[i] < cols[j]
	})
	if len(cols) > 7 {
		cols = cols[:7]
	}
	return cols
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// visibleScreens are the screens of the plugins enabled for the
// institution whose permission the person holds.
func (c *Console) visibleScreens(q *req) []*screen {
	enabled := map[string]bool{}
	for _, p := range q.get("/api/v1/tenant/plugins").items() {
		if p["enabled"] == true {
			enabled[str(p["name"])] = true
		}
	}
	perms := q.permissions()
	var out []*screen
	for _, s := range c.allScreens(q) {
		if enabled[s.Plugin] && (s.Perm == "" || slices.Contains(perms, s.Perm)) {
			out = append(out, s)
		}
	}
	return out
}

// screenLinks are the top-level screens (no path parameters), by plugin.
func (c *Console) screenLinks(q *req) []screenLink {
	var out []screenLink
	for _, s := range c.visibleScreens(q) {
		if len(s.Params) > 0 {
			continue
		}
		if len(out) == 0 || out[len(out)-1].Plugin != s.Plugin {
			out = append(out, screenLink{Plugin: s.Plugin})
		}
		out[len(out)-1].Screens = append(out[len(out)-1].Screens, s)
	}
	return out
}

func (c *Console) findScreen(q *req) *screen {
	plugin, id := q.r.PathValue("plugin"), q.r.PathValue("op")
	for _, s := range c.visibleScreens(q) {
		if s.Plugin == plugin && s.ID == id {
			return s
		}
	}
	return nil
}

// apiPath fills the screen's path parameters from the query string.
func (s *screen) apiPath(v url.Values) (string, bool) {
	p := s.Path
	for _, name := range s.Params {
		x := v.Get(name)
		if x == "" {
			return "", false
		}
		p = strings.Replace(p, "{"+name+"}", url.PathEscape(x), 1)
	}
	return p, true
}

// screen shows one list screen.
func (c *Console) screen(q *req) {
	c.renderScreen(q, http.StatusOK, view{})
}

func (c *Console) renderScreen(q *req, status int, v view) {
	s := c.findScreen(q)
	if s == nil {
		q.fail(http.StatusNotFound, "This screen does not exist, or its plugin is not enabled for your institution, or you may not see it.")
		return
	}
	qv := q.r.URL.Query()
	path, ok := s.apiPath(qv)
	if !ok {
		q.fail(http.StatusBadRequest, "This list belongs to one item: open it from its parent list.")
		return
	}
	api := url.Values{"limit": {"50"}}
	for _, f := range s.Query {
		if x := qv.Get(f.Name); x != "" {
			api.Set(f.Name, x)
		}
	}
	if cur := qv.Get("cursor"); cur != "" {
		api.Set("cursor", cur)
	}
	res := q.get(path + "?" + api.Encode())
	data := map[string]any{"screen": s, "params": qv}
	pq := url.Values{}
	for _, p := range s.Params {
		pq.Set(p, qv.Get(p))
	}
	data["query"] = pq.Encode()
	if v.Data != nil {
		for k, x := range v.Data {
			data[k] = x
		}
	}
	if res.ok() {
		rows := objects(res.Body[s.Key])
		cells := make([][]string, len(rows))
		links := make([][]map[string]string, len(rows))
		for i, r := range rows {
			for _, col := range s.Columns {
				cells[i] = append(cells[i], cell(r[col]))
			}
			for _, n := range s.Nested {
				u := url.Values{}
				for k := range qv {
					if slices.Contains(s.Params, k) {
						u.Set(k, qv.Get(k))
					}
				}
				u.Set(n.Params[len(n.Params)-1], str(r["id"]))
				links[i] = append(links[i], map[string]string{"title": n.Label, "href": Prefix + "/apps/" + n.Plugin + "/" + n.ID + "?" + u.Encode()})
			}
		}
		ids := make([]string, len(rows))
		for i, r := range rows {
			ids[i] = str(r["id"])
		}
		data["cells"], data["links"], data["ids"], data["next"] = cells, links, ids, str(res.Body["next_cursor"])
	} else if v.Error == "" {
		v.Error = res.message()
	}
	// Only what the person may do: the form and the buttons of routes
	// whose permission they hold (the API decides anyway).
	perms := q.permissions()
	may := func(perm string) bool { return perm == "" || slices.Contains(perms, perm) }
	if s.Create != nil && may(s.Create.Perm) {
		form := v.Form
		data["createFields"] = schemaFields(s.Create.Schema, nil, nil, form)
		data["canCreate"] = true
	}
	allowed := map[int]bool{}
	for n, a := range s.Actions {
		if may(a.Perm) {
			allowed[n] = true
		}
	}
	data["actions"] = allowed
	data["anyAction"] = len(allowed) > 0
	v.Title, v.Nav = labelFor(s.Plugin)+": "+s.Label, "app:"+s.Plugin
	if status == http.StatusOK && !res.ok() {
		status = statusFor(res)
	}
	q.render(status, "screen", v.withData(data))
}

// cell is a value as a table shows it: times in UTC to the minute.
func cell(v any) string {
	if s, ok := v.(string); ok && len(s) >= 20 && s[4] == '-' && s[10] == 'T' {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC().Format("2006-01-02 15:04")
		}
	}
	return str(v)
}

func (v view) withData(d map[string]any) view {
	v.Data = d
	return v
}

// screenCreate posts a screen's "New" form.
func (c *Console) screenCreate(q *req) {
	s := c.findScreen(q)
	if s == nil || s.Create == nil {
		q.fail(http.StatusNotFound, "This screen has no form.")
		return
	}
	list := &screen{Path: s.Create.Path, Params: s.Params}
	path, ok := list.apiPath(q.r.URL.Query())
	if !ok {
		q.fail(http.StatusBadRequest, "This list belongs to one item: open it from its parent list.")
		return
	}
	fields := schemaFields(s.Create.Schema, nil, nil, nil)
	body := formValues(fields, q.r.PostForm, false)
	res := q.call(http.MethodPost, path, body)
	if !res.ok() {
		c.renderScreen(q, statusFor(res), view{Error: "Not saved: " + res.message(), Fields: topFields(res.fields(), ""), Form: q.r.PostForm})
		return
	}
	q.redirect(q.r.URL.RequestURI(), "Saved.")
}

// topFields maps the API's field names (title, config.x, items[0].y) to
// the form's top-level fields, after prefix.
func topFields(in map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range in {
		n, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if i := strings.IndexAny(n, ".["); i > 0 {
			n = n[:i]
		}
		if out[n] != "" {
			out[n] += "; "
		}
		out[n] += v
	}
	return out
}

// screenAction runs a row's action: POST with no body.
func (c *Console) screenAction(q *req) {
	s := c.findScreen(q)
	n, err := strconv.Atoi(q.r.PathValue("n"))
	if s == nil || err != nil || n < 0 || n >= len(s.Actions) {
		q.fail(http.StatusNotFound, "This action does not exist, or its plugin is not enabled for your institution.")
		return
	}
	a := s.Actions[n]
	id := q.r.PostFormValue("id")
	back := Prefix + "/apps/" + s.Plugin + "/" + s.ID
	if qs := q.r.URL.RawQuery; qs != "" {
		back += "?" + qs
	}
	if id == "" {
		q.redirect(back, a.Label+": no item was named.")
		return
	}
	list := &screen{Path: a.Path, Params: append(append([]string{}, s.Params...), a.Param)}
	v := q.r.URL.Query()
	v.Set(a.Param, id)
	path, ok := list.apiPath(v)
	if !ok {
		q.fail(http.StatusBadRequest, "This list belongs to one item: open it from its parent list.")
		return
	}
	res := q.call(http.MethodPost, path, nil)
	if !res.ok() {
		q.redirect(back, a.Label+" failed: "+res.message())
		return
	}
	q.redirect(back, a.Label+": done.")
}
