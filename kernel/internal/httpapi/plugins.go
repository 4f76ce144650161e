package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/kernel/internal/problem"
	"github.com/edulure/edulure/kernel/internal/supervisor"
	"github.com/edulure/edulure/sdk"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// forwardedHeaders are the request headers a plugin sees. Credentials and
// cookies never leave the kernel.
var forwardedHeaders = []string{"Accept", "Accept-Language", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key", "User-Agent"}

// returnedHeaders are the response headers a plugin may set, in canonical
// form (http.CanonicalHeaderKey: "Etag").
var returnedHeaders = []string{"Content-Type", "Content-Language", "Content-Disposition", "Cache-Control", "Etag", "Last-Modified", "Location", "Link", "Retry-After"}

// pluginProxy serves every /api/v1 path the kernel does not: it resolves
// the plugin route, authenticates, checks that the plugin is enabled for
// the caller's institution, asks OPA about the route's permission, and
// only then forwards the request over gRPC.
func (s *Server) pluginProxy(c echo.Context) error {
	req := c.Request()
	target, params, found := s.Plugins.Lookup(req.Method, req.URL.Path)
	switch found {
	case supervisor.NoRoute:
		if s.kernelPathExists(req.URL.Path) {
			return echo.ErrMethodNotAllowed
		}
		return echo.ErrNotFound
	case supervisor.WrongMethod:
		return echo.ErrMethodNotAllowed
	}
	setHeaders(c.Response().Header(), noStoreHeader)
	if err := pluginParamsProblem(params, req.URL.RawQuery); err != nil {
		return err
	}
	// Logs and metrics name the plugin's route template, not the catch-all.
	c.SetPath(target.Route.Path.String())
	c.Set(pluginKey, target.Plugin)
	ctx := req.Context()
	route := target.Route
	var p *Principal
	if _, sent := bearer(c); sent || !route.Public {
		var err error
		if p, err = s.principal(c); err != nil {
			if pr, ok := err.(*problem.Problem); ok && pr.Status == http.StatusUnauthorized {
				c.Response().Header().Set("WWW-Authenticate", `Bearer realm="edulure"`)
			}
			return err
		}
		c.Set(principalKey, p)
	}
	var tenantConfig json.RawMessage
	if p != nil && p.HasTenant() {
		st, err := s.Plugins.Enablement.Get(ctx, p.TenantID, target.Plugin)
		if err != nil {
			return err
		}
		if !st.Enabled {
			return problem.New(http.StatusNotFound, "plugin-not-enabled", fmt.Sprintf("the %s plugin is not enabled for this institution", target.Plugin))
		}
		tenantConfig = st.Config
	} else if !route.Public {
		return problem.New(http.StatusForbidden, "tenant-required", "this route needs a token scoped to an institution: log in with a tenant or call POST /api/v1/auth/switch")
	}
	if !route.Public {
		ok, err := s.Authz.Allowed(ctx, s.authzInput(p, route.Permission))
		if err != nil {
			return err
		}
		if !ok {
			return problem.New(http.StatusForbidden, "permission-denied", "you lack the permission "+route.Permission)
		}
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return problem.New(http.StatusRequestEntityTooLarge, "body-too-large", fmt.Sprintf("request body is larger than the limit of %d bytes", s.Config.BodyLimit))
		}
		return problem.New(http.StatusBadRequest, "bad-request", "the request body could not be read")
	}
	in := &pluginv1.HTTPRequest{
		Route: route.Key, Method: req.Method, Path: req.URL.Path, PathParams: params,
		Body: body, RequestId: c.Response().Header().Get(echo.HeaderXRequestID), TenantConfigJson: tenantConfig,
		Principal: s.wirePrincipal(ctx, p, target),
	}
	if q := req.URL.Query(); len(q) > 0 {
		in.Query = make(map[string]*pluginv1.Values, len(q))
		for k, v := range q {
			in.Query[k] = &pluginv1.Values{Values: v}
		}
	}
	for _, h := range forwardedHeaders {
		if v := req.Header.Values(h); len(v) > 0 {
			if in.Headers == nil {
				in.Headers = map[string]*pluginv1.Values{}
			}
			in.Headers[h] = &pluginv1.Values{Values: v}
		}
	}
	resp, err := s.Plugins.Forward(ctx, target, in)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	// Names compared in canonical form: a plugin's Header.Set("ETag")
	// sends "Etag", another SDK may send "ETag".
	for name, v := range resp.Headers {
		if slices.Contains(returnedHeaders, http.CanonicalHeaderKey(name)) {
			for _, x := range v.Values {
				h.Add(name, x)
			}
		}
	}
	if len(resp.Body) > 0 && h.Get(echo.HeaderContentType) == "" {
		h.Set(echo.HeaderContentType, "application/octet-stream")
	}
	c.Response().WriteHeader(int(resp.Status))
	if len(resp.Body) > 0 && resp.Status != http.StatusNoContent && resp.Status != http.StatusNotModified {
		_, err = c.Response().Write(resp.Body)
	}
	return err
}

const pluginKey = "edulure.plugin"

// pluginParamsProblem refuses what a plugin could not receive or store: a
// path or query parameter with a NUL character or bytes that are not UTF-8
// (protobuf strings must be UTF-8, Postgres text holds no NUL).
func pluginParamsProblem(params map[string]string, rawQuery string) error {
	if len(params) == 0 && rawQuery == "" {
		return nil
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	values := make([]string, len(names))
	for i, k := range names {
		values[i] = params[k]
	}
	return paramsProblem(names, values, rawQuery)
}

// kernelPathExists reports whether a kernel route has this path (with some
// other method, or the router would have matched it): a 405, not a 404.
func (s *Server) kernelPathExists(path string) bool {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for _, r := range s.routes {
		segs := strings.Split(strings.Trim(r.Path, "/"), "/")
		if len(segs) != len(parts) {
			continue
		}
		match := true
		for i, seg := range segs {
			if !strings.HasPrefix(seg, ":") && seg != parts[i] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

func (s *Server) wirePrincipal(ctx context.Context, p *Principal, t supervisor.Target) *pluginv1.Principal {
	if p == nil {
		return &pluginv1.Principal{Kind: "anonymous"}
	}
	out := &pluginv1.Principal{Kind: p.Kind, Roles: p.Roles, Operator: p.Operator}
	if p.Kind == "apikey" {
		out.ApiKeyId = p.KeyID.String()
	} else {
		out.UserId = p.userString()
	}
	if p.HasTenant() {
		out.TenantId = p.tenantString()
		out.Permissions = t.Permissions(func(perm string) bool {
			ok, err := s.Authz.Allowed(ctx, s.authzInput(p, perm))
			return err == nil && ok
		})
	}
	return out
}

// PluginView is one installed plugin as an institution sees it.
type PluginView struct {
	Name             string          `json:"name"`
	Version          string          `json:"version"`
	Description      string          `json:"description,omitempty"`
	State            string          `json:"state"`
	Enabled          bool            `json:"enabled"`
	EnabledByDefault bool            `json:"enabled_by_default"`
	Config           json.RawMessage `json:"config"`
	ConfigSchema     json.RawMessage `json:"config_schema,omitempty"`
	Routes           []string        `json:"routes"`
	Permissions      []string        `json:"permissions"`
}

// PutPluginRequest enables or disables a plugin and sets its configuration.
type PutPluginRequest struct {
	Enabled *bool           `json:"enabled"`
	Config  json.RawMessage `json:"config,omitempty"`
}

func (s *Server) tenantPluginView(ctx context.Context, tenant uuid.UUID, st supervisor.Status) (PluginView, error) {
	set, err := s.Plugins.Enablement.Get(ctx, tenant, st.Name)
	if err != nil {
		return PluginView{}, err
	}
	v := PluginView{
		Name: st.Name, Version: st.Version, Description: st.Description, State: string(st.State),
		Enabled: set.Enabled, EnabledByDefault: st.EnabledByDefault, Config: set.Config,
		Routes: st.Routes, Permissions: st.Permissions,
	}
	if m, ok := s.Plugins.Manifest(st.Name); ok && len(m.ConfigSchemaJson) > 0 {
		v.ConfigSchema = m.ConfigSchemaJson
	}
	return v, nil
}

func (s *Server) listTenantPlugins(c echo.Context) error {
	p := principalOf(c)
	out := Page[PluginView]{Items: []PluginView{}}
	for _, st := range s.Plugins.Statuses() {
		if st.State == supervisor.StateFailed && len(st.Routes) == 0 {
			continue // refused at load: not installed as far as institutions can tell
		}
		v, err := s.tenantPluginView(c.Request().Context(), p.TenantID, st)
		if err != nil {
			return err
		}
		out.Items = append(out.Items, v)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) putTenantPlugin(c echo.Context) error {
	p := principalOf(c)
	name := c.Param("name")
	st, ok := s.Plugins.Status(name)
	m, loaded := s.Plugins.Manifest(name)
	if !ok || !loaded {
		return problem.New(http.StatusNotFound, "plugin-not-installed", fmt.Sprintf("no plugin %q is installed on this platform", name))
	}
	var body PutPluginRequest
	if err := decodeJSON(c, &body); err != nil {
		return err
	}
	if body.Enabled == nil {
		return sdk.Invalid(sdk.FieldError{Field: "enabled", Message: "is required (true or false)"})
	}
	ctx := c.Request().Context()
	cur, err := s.Plugins.Enablement.Get(ctx, p.TenantID, name)
	if err != nil {
		return err
	}
	cfg := cur.Config
	if body.Config != nil && string(body.Config) != "null" {
		cfg = body.Config
	}
	if err := validatePluginConfig(m, cfg); err != nil {
		return err
	}
	set := supervisor.Setting{Enabled: *body.Enabled, Config: cfg}
	err = s.inTx(c, func(t *txc) error {
		if err := s.Plugins.Enablement.Put(ctx, t.Tx, p.TenantID, name, set, p.UserID); err != nil {
			return err
		}
		if _, err := t.Exec(ctx, `SELECT pg_notify('edulure_changes', $1)`, supervisor.TopicPlugins+":"+p.TenantID.String()); err != nil {
			return err
		}
		t.changed(supervisor.TopicPlugins + ":" + p.TenantID.String())
		action, event := "tenancy.plugin.enabled", outbox.PluginEnabled
		if !set.Enabled {
			action, event = "tenancy.plugin.disabled", outbox.PluginDisabled
		}
		data := map[string]any{"plugin": name, "version": st.Version, "enabled": set.Enabled, "config_changed": string(cfg) != string(cur.Config)}
		if err := t.audit(p.TenantID, action, "plugin:"+name, data); err != nil {
			return err
		}
		return t.event(event, p.TenantID, map[string]any{"plugin": name, "version": st.Version})
	})
	if err != nil {
		return err
	}
	st, _ = s.Plugins.Status(name)
	v, err := s.tenantPluginView(ctx, p.TenantID, st)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// validatePluginConfig checks cfg against the plugin's schema; each
// violation names its field (config.label).
func validatePluginConfig(m *supervisor.Manifest, cfg json.RawMessage) error {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(string(cfg)))
	if err != nil {
		return sdk.Invalid(sdk.FieldError{Field: "config", Message: "must be a JSON object"})
	}
	if _, ok := doc.(map[string]any); !ok {
		return sdk.Invalid(sdk.FieldError{Field: "config", Message: "must be a JSON object"})
	}
	if m.ConfigSchema == nil {
		if len(doc.(map[string]any)) > 0 {
			return sdk.Invalid(sdk.FieldError{Field: "config", Message: "this plugin takes no configuration"})
		}
		return nil
	}
	err = m.ConfigSchema.Validate(doc)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	var fields []sdk.FieldError
	for _, u := range ve.BasicOutput().Errors {
		if u.Error == nil {
			continue
		}
		field := "config" + strings.ReplaceAll(u.InstanceLocation, "/", ".")
		fields = append(fields, sdk.FieldError{Field: field, Message: u.Error.String()})
	}
	if len(fields) == 0 {
		fields = append(fields, sdk.FieldError{Field: "config", Message: ve.Error()})
	}
	return sdk.Invalid(fields...)
}

func (s *Server) listPlugins(c echo.Context) error {
	return c.JSON(http.StatusOK, Page[supervisor.Status]{Items: s.Plugins.Statuses()})
}

func (s *Server) reloadPlugins(c echo.Context) error {
	res, err := s.Plugins.Reload(c.Request().Context())
	if err != nil {
		return problem.New(http.StatusUnprocessableEntity, "plugins-config-invalid", err.Error())
	}
	err = s.inTx(c, func(t *txc) error {
		return t.audit(uuid.Nil, "platform.plugins.reloaded", "plugins.hcl", map[string]any{
			"started": res.Started, "upgraded": res.Upgraded, "restarted": res.Restarted, "removed": res.Removed, "failed": res.Failed,
		})
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
