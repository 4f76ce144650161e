package supervisor

import (
	"sort"
	"strings"

	"github.com/edulure/edulure/sdk/wire"
)

// routeTable is an immutable snapshot of every loaded plugin's routes,
// swapped whole when a plugin loads, upgrades or goes away.
type routeTable struct {
	version  uint64
	byMethod map[string][]Target
	// byNoun holds byMethod's routes by their first segment after
	// /api/v1/ (the plugin's noun; "" for a parameter there), so that a
	// lookup tries a handful of routes rather than every plugin's.
	byNoun map[string]map[string][]Target
	all    []Target
}

// noun is a route template's or a request path's first segment after
// /api/v1/, "" when it is a parameter or missing.
func noun(parts []string) string {
	if len(parts) < 3 || strings.HasPrefix(parts[2], "{") {
		return ""
	}
	return parts[2]
}

// Target is a plugin route a request resolved to.
type Target struct {
	Route  *Route
	Plugin string
	slot   *slot
}

// Lookup outcomes.
const (
	NoRoute = iota
	Found
	WrongMethod
)

// Lookup finds the plugin route for method and path. On WrongMethod the path
// exists with other methods.
func (s *Supervisor) Lookup(method, path string) (Target, map[string]string, int) {
	t := s.table.Load()
	parts := wire.SplitPath(path)
	byNoun := t.byNoun[method]
	for _, key := range [2]string{noun(parts), ""} {
		for _, e := range byNoun[key] {
			if params, ok := e.Route.Path.Match(parts); ok {
				return e, params, Found
			}
		}
		if key == "" {
			break
		}
	}
	for _, e := range t.all {
		if _, ok := e.Route.Path.Match(parts); ok {
			return Target{}, nil, WrongMethod
		}
	}
	return Target{}, nil, NoRoute
}

// Routes lists every plugin route, for the OpenAPI document, with a version
// that changes whenever the list does.
func (s *Supervisor) Routes() ([]Target, uint64) {
	t := s.table.Load()
	return t.all, t.version
}

// rebuildTable snapshots the routes of every slot with a manifest. Routes of
// a restarting or quarantined plugin stay, so that clients get a 503 that
// says so rather than a 404.
func (s *Supervisor) rebuildTable() {
	s.mu.RLock()
	t := &routeTable{byMethod: map[string][]Target{}, byNoun: map[string]map[string][]Target{}, version: s.tableVersion.Add(1)}
	for name, sl := range s.slots {
		sl.mu.Lock()
		if sl.manifest != nil && sl.state != StateStopped {
			for _, r := range sl.manifest.Routes {
				e := Target{Route: r, Plugin: name, slot: sl}
				t.byMethod[r.Method] = append(t.byMethod[r.Method], e)
				if t.byNoun[r.Method] == nil {
					t.byNoun[r.Method] = map[string][]Target{}
				}
				k := noun(wire.SplitPath(r.Path.String()))
				t.byNoun[r.Method][k] = append(t.byNoun[r.Method][k], e)
				t.all = append(t.all, e)
			}
		}
		sl.mu.Unlock()
	}
	s.mu.RUnlock()
	// Literal segments before parameters: /x/new wins over /x/{id}, as in the
	// kernel's router. Overlaps within a method are refused at load, so the
	// order only matters for readability of the OpenAPI document.
	sort.Slice(t.all, func(i, j int) bool { return t.all[i].Route.Key < t.all[j].Route.Key })
	s.table.Store(t)
	s.changed()
}
