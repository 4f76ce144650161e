package wire

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Path is a route path template: /api/v1/leaderboard/{user_id}.
type Path struct {
	raw  string
	segs []segment
}

type segment struct {
	lit   string
	param string // set for {name} segments
}

var (
	literalSeg = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	paramSeg   = regexp.MustCompile(`^\{([a-z_][a-z0-9_]*)\}$`)
)

// ParsePath parses a template. It must start with /api/v1/, have no empty,
// upper-case or duplicate-parameter segments, and no trailing slash.
func ParsePath(p string) (Path, error) {
	if !strings.HasPrefix(p, "/api/v1/") {
		return Path{}, fmt.Errorf("path %q must start with /api/v1/", p)
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	out := Path{raw: p}
	seen := map[string]bool{}
	for _, s := range parts {
		switch {
		case s == "":
			return Path{}, fmt.Errorf("path %q has an empty segment", p)
		case paramSeg.MatchString(s):
			name := paramSeg.FindStringSubmatch(s)[1]
			if seen[name] {
				return Path{}, fmt.Errorf("path %q repeats parameter {%s}", p, name)
			}
			seen[name] = true
			out.segs = append(out.segs, segment{param: name})
		case literalSeg.MatchString(s):
			out.segs = append(out.segs, segment{lit: s})
		default:
			return Path{}, fmt.Errorf("path %q: segment %q must be lowercase letters, digits, '.', '_' or '-', or a {parameter}", p, s)
		}
	}
	if len(out.segs) < 3 || out.segs[2].param != "" {
		return Path{}, fmt.Errorf("path %q must name a resource after /api/v1/", p)
	}
	return out, nil
}

// String is the template as written.
func (p Path) String() string { return p.raw }

// Segments is the number of segments, /api and /v1 included.
func (p Path) Segments() int { return len(p.segs) }

// Resource is the first segment after /api/v1/: "leaderboard".
func (p Path) Resource() string { return p.segs[2].lit }

// Params lists the parameter names in order.
func (p Path) Params() []string {
	var out []string
	for _, s := range p.segs {
		if s.param != "" {
			out = append(out, s.param)
		}
	}
	return out
}

// Match matches a request path (already split on "/", without the leading
// empty element) and returns the unescaped parameters.
func (p Path) Match(parts []string) (map[string]string, bool) {
	if len(parts) != len(p.segs) {
		return nil, false
	}
	var params map[string]string
	for i, s := range p.segs {
		if s.param == "" {
			if parts[i] != s.lit {
				return nil, false
			}
			continue
		}
		if parts[i] == "" {
			return nil, false
		}
		v, err := url.PathUnescape(parts[i])
		if err != nil {
			return nil, false
		}
		if params == nil {
			params = make(map[string]string, 2)
		}
		params[s.param] = v
	}
	return params, true
}

// Overlaps reports whether some request path would match both templates.
func (p Path) Overlaps(q Path) bool {
	if len(p.segs) != len(q.segs) {
		return false
	}
	for i := range p.segs {
		a, b := p.segs[i], q.segs[i]
		if a.param == "" && b.param == "" && a.lit != b.lit {
			return false
		}
	}
	return true
}

// SplitPath splits a request path for Match.
func SplitPath(path string) []string {
	return strings.Split(strings.TrimPrefix(path, "/"), "/")
}
