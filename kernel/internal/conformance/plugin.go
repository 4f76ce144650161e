package conformance

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/edulure/edulure/sdk"
)

// Plugin is the conformance plugin.
type Plugin struct{ env *sdk.Env }

var (
	_ sdk.Plugin      = (*Plugin)(nil)
	_ sdk.Provisioner = (*Plugin)(nil)
)

// New builds it.
func New() *Plugin { return &Plugin{} }

// Provision keeps the Env, for the platform's storage.
func (p *Plugin) Provision(_ context.Context, env *sdk.Env) error {
	p.env = env
	return nil
}

// Permissions.
const (
	PermRead  = "conf.thing.read"
	PermWrite = "conf.thing.write"
)

// Settings is its configuration.
type Settings struct {
	Greeting string `json:"greeting" maxLength:"10"`
}

// EchoQuery are the echo route's query parameters.
type EchoQuery struct {
	Limit int      `query:"limit" minimum:"1" maximum:"100"`
	Tags  []string `query:"tag" maxLength:"5"`
	Mode  string   `query:"mode" enum:"a,b"`
	Must  string   `query:"must" required:"true"`
}

// NewThing is the body of POST /things.
type NewThing struct {
	Name  string   `json:"name" minLength:"1" maxLength:"10"`
	Count *int     `json:"count,omitempty" minimum:"0"`
	Kind  string   `json:"kind,omitempty" enum:"x,y"`
	Owner string   `json:"owner,omitempty" format:"uuid"`
	Tags  []string `json:"tags,omitempty" maxItems:"2"`
}

// Thing is what POST /things answers.
type Thing struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// Echo is what the echo route answers: what the plugin received, without
// the IDs that differ between a kernel and plugintest.
type Echo struct {
	Params      map[string]string   `json:"params"`
	Query       map[string][]string `json:"query"`
	Typed       *Typed              `json:"typed,omitempty"`
	Headers     map[string][]string `json:"headers"`
	Kind        string              `json:"kind"`
	Roles       []string            `json:"roles"`
	Permissions []string            `json:"permissions"`
	Greeting    string              `json:"greeting"`
}

// Typed is what sdk.Query read.
type Typed struct {
	Limit int      `json:"limit"`
	Tags  []string `json:"tags"`
	Mode  string   `json:"mode"`
	Must  string   `json:"must"`
}

// Manifest declares the plugin.
func (p *Plugin) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name: "conf", Version: "0.1.0", Description: "The request contract's conformance plugin",
		Permissions: []sdk.Permission{
			{Name: PermRead, DefaultRoles: []string{"admin", "instructor", "learner"}},
			{Name: PermWrite, DefaultRoles: []string{"admin"}},
		},
		Routes: append([]sdk.Route{
			{Method: "GET", Path: "/api/v1/conf/echo/{id}", Permission: PermRead, Query: EchoQuery{}, Response: Echo{}, Handler: echo},
			{Method: "GET", Path: "/api/v1/conf/public", Public: true, Response: Echo{}, Handler: echo},
			{Method: "POST", Path: "/api/v1/conf/things", Permission: PermWrite, Request: NewThing{}, Response: Thing{}, Status: http.StatusCreated, Handler: create},
			{Method: "GET", Path: "/api/v1/conf/errors/{kind}", Permission: PermRead, Handler: fail},
			{Method: "GET", Path: "/api/v1/conf/status/{code}", Permission: PermRead, Handler: status},
			{Method: "GET", Path: "/api/v1/conf/stream/{kind}", Permission: PermRead, Query: EchoQuery{}, ContentType: "application/json", Stream: stream},
		}, p.storageRoutes()...),
		Capabilities: []sdk.Capability{sdk.CapStorage},
		Config:       Settings{Greeting: "hi"},
	}
}

func echo(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	cfg, err := sdk.Config[Settings](ctx, req)
	if err != nil {
		return nil, err
	}
	out := Echo{Params: req.Params, Query: req.Query, Headers: req.Header, Kind: string(req.Principal.Kind),
		Roles: req.Principal.Roles, Permissions: req.Principal.Permissions, Greeting: cfg.Greeting}
	if req.Route == "GET /api/v1/conf/echo/{id}" {
		q, err := sdk.Query[EchoQuery](req)
		if err != nil {
			return nil, err
		}
		out.Typed = &Typed{Limit: q.Limit, Tags: q.Tags, Mode: q.Mode, Must: q.Must}
		if out.Typed.Tags == nil {
			out.Typed.Tags = []string{}
		}
	}
	if out.Roles == nil {
		out.Roles = []string{}
	}
	if out.Permissions == nil {
		out.Permissions = []string{}
	}
	resp, err := sdk.JSON(http.StatusOK, out)
	if err != nil {
		return nil, err
	}
	resp.Header.Set("ETag", `"e1"`)
	resp.Header.Set("X-Internal", "must not reach the client")
	resp.Header.Set("Set-Cookie", "session=stolen")
	return resp, nil
}

func create(_ context.Context, req *sdk.Request) (*sdk.Response, error) {
	var in NewThing
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	t := Thing{Name: in.Name}
	if in.Count != nil {
		t.Count = *in.Count
	}
	resp, err := sdk.JSON(http.StatusCreated, t)
	if err != nil {
		return nil, err
	}
	resp.Header.Set("Location", "/api/v1/conf/things/"+in.Name)
	return resp, nil
}

var sentinels = map[string]error{
	"invalid": sdk.ErrInvalid, "bad_request": sdk.ErrBadRequest, "unauthorized": sdk.ErrUnauthorized,
	"forbidden": sdk.ErrForbidden, "not_found": sdk.ErrNotFound, "conflict": sdk.ErrConflict, "gone": sdk.ErrGone,
	"too_many_requests": sdk.ErrTooManyRequests, "unavailable": sdk.ErrUnavailable, "too_large": sdk.ErrTooLarge,
}

func fail(_ context.Context, req *sdk.Request) (*sdk.Response, error) {
	kind := req.Param("kind")
	switch kind {
	case "internal":
		return nil, errors.New("a detail the client must not see")
	case "fields":
		return nil, sdk.Invalid(sdk.FieldError{Field: "b", Message: "is bad"}, sdk.FieldError{Field: "a.0", Message: "is worse"})
	case "coded":
		return nil, sdk.Errorf(sdk.ErrConflict, "already there").WithCode("already-there")
	case "retry":
		e := sdk.Errorf(sdk.ErrTooManyRequests, "slow down")
		e.RetryAfterSeconds = 7
		return nil, e
	}
	if s, ok := sentinels[kind]; ok {
		return nil, sdk.Errorf(s, "failing with %s", kind)
	}
	return nil, sdk.Errorf(sdk.ErrNotFound, "no error kind %q", kind)
}

func status(_ context.Context, req *sdk.Request) (*sdk.Response, error) {
	code, err := strconv.Atoi(req.Param("code"))
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrNotFound, "not a status")
	}
	return &sdk.Response{Status: code, Header: http.Header{"Cache-Control": {"max-age=60"}}, Body: []byte("body")}, nil
}

// stream answers in parts: kind "echo" the echo route's answer (its
// headers, the JSON in two parts), "error-<kind>" an error before the
// first part, "status-<code>" that status with a body, "empty" nothing.
func stream(ctx context.Context, req *sdk.Request, w *sdk.Stream) error {
	kind := req.Param("kind")
	switch {
	case kind == "echo":
		resp, err := echo(ctx, req)
		if err != nil {
			return err
		}
		for name := range resp.Header {
			if err := w.SetHeader(name, resp.Header.Get(name)); err != nil {
				return err
			}
		}
		half := len(resp.Body) / 2
		if _, err := w.Write(resp.Body[:half]); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		_, err = w.Write(resp.Body[half:])
		return err
	case kind == "empty":
		return nil
	case len(kind) > 6 && kind[:6] == "error-":
		req.Params["kind"] = kind[6:]
		_, err := fail(ctx, req)
		return err
	case len(kind) > 7 && kind[:7] == "status-":
		code, err := strconv.Atoi(kind[7:])
		if err != nil {
			return sdk.Errorf(sdk.ErrNotFound, "not a status")
		}
		if err := w.WriteHeader(code); err != nil {
			return err
		}
		_, err = w.Write([]byte("body"))
		return err
	}
	return sdk.Errorf(sdk.ErrNotFound, "no stream kind %q", kind)
}
