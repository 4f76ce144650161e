package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/kernel/internal/problem"
	"github.com/edulure/edulure/kernel/internal/supervisor"
	"github.com/edulure/edulure/sdk"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/wire"
)

// pluginProxy serves every /api/v1 path the kernel does not: it resolves
// the plugin route, authenticates, checks that the plugin is enabled for
// the caller's institution, asks OPA about the route's permission, checks
// the request against the route's contract (declared query parameters and
// body schema, wire.Contract, as sdk/plugintest does), and only then
// forwards the request over gRPC.
func (s *Server) pluginProxy(c echo.Context) error {
	req := c.Request()
	// The deadline middleware leaves plugin routes to this handler: the
	// request timeout bounds the checks below and a plain request, while a
	// streamed answer keeps the client's context and the stream limits.
	client := req.Context()
	ctx, cancel := context.WithTimeout(client, s.Config.RequestTimeout)
	defer cancel()
	req = req.WithContext(ctx)
	c.SetRequest(req)
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
	// Logs and metrics name the plugin's route template, not the catch-all.
	c.SetPath(target.Route.Path.String())
	c.Set(pluginKey, target.Plugin)
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
		st, cfg, err := s.Plugins.TenantConfig(ctx, p.TenantID, target.Plugin)
		if err != nil {
			return err
		}
		if !st.Enabled {
			return problem.New(http.StatusNotFound, "plugin-not-enabled", fmt.Sprintf("the %s plugin is not enabled for this institution", target.Plugin))
		}
		tenantConfig = cfg
	}
	if !route.Public {
		if err := s.authorize(ctx, p, accessCheck{Access: TenantScoped, Permission: route.Permission, What: "this route"}); err != nil {
			return err
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
	var query url.Values
	if req.URL.RawQuery != "" {
		query = req.URL.Query()
	}
	if err := pluginParamsProblem(params, req.URL.RawQuery, req.Header); err != nil {
		return err
	}
	forwarded, err := route.Contract.Check(params, query, body)
	if err != nil {
		return refusalProblem(err)
	}
	in := &pluginv1.HTTPRequest{
		Route: route.Key, Method: req.Method, Path: req.URL.Path, PathParams: params, Query: forwarded,
		Headers: wire.FilterHeaders(req.Header, wire.ForwardedHeaders),
		Body:    body, RequestId: c.Response().Header().Get(echo.HeaderXRequestID), TenantConfigJson: tenantConfig,
		Principal: s.wirePrincipal(ctx, p, target),
	}
	if route.Stream {
		return s.streamFromPlugin(c, client, target, p, in)
	}
	resp, err := s.Plugins.Forward(ctx, target, in)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	for name, v := range wire.ResponseHeaders(resp) {
		h[name] = v
	}
	c.Response().WriteHeader(int(resp.Status))
	if b := wire.ResponseBody(resp); len(b) > 0 {
		_, err = c.Response().Write(b)
	}
	return err
}

// refusalProblem is the answer to a request its route's contract refuses.
func refusalProblem(err error) error {
	r, ok := err.(*wire.Refusal)
	if !ok {
		return err
	}
	p := problem.New(r.Kind.Status, r.Kind.Code, r.Detail)
	for _, f := range r.Fields {
		p.Errors = append(p.Errors, sdk.FieldError{Field: f.Field, Message: f.Message})
	}
	return p
}

const (
	// pluginRoutes is the catch-all route of the plugin proxy.
	pluginRoutes = "/api/v1/*"
	pluginKey    = "edulure.plugin"
)

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
		ctx, end := s.startSpan(ctx, "authorize plugin permissions")
		defer end()
		out.Permissions = t.Permissions(func(perm string) bool {
			ok, err := s.Authz.Allowed(ctx, s.authzInput(p, perm))
			return err == nil && ok
		})
	}
	return out
}

// PluginView is one installed plugin as an institution sees it. Config
// holds its settings except the secret ones, which are never shown: Secrets
// says which of those are set.
type PluginView struct {
	Name             string                     `json:"name"`
	Version          string                     `json:"version"`
	Description      string                     `json:"description,omitempty"`
	State            string                     `json:"state"`
	Enabled          bool                       `json:"enabled"`
	EnabledByDefault bool                       `json:"enabled_by_default"`
	Config           map[string]json.RawMessage `json:"config" doc:"The institution's settings, as stored, without the secret ones; {} when none."`
	Secrets          SecretViews                `json:"secrets" doc:"The secret settings (writeOnly in config_schema), by name: whether each is set, never its value."`
	ConfigSchema     map[string]json.RawMessage `json:"config_schema,omitempty" doc:"The JSON Schema of the settings, when the plugin has any."`
	Routes           []string                   `json:"routes"`
	Permissions      []string                   `json:"permissions"`
}

// SecretViews are a plugin's secret settings (writeOnly in its
// config_schema) by name.
type SecretViews map[string]SecretView

// SecretView is what an institution sees of one of its secret settings:
// whether it is set and when it last changed, never the value.
type SecretView struct {
	Set       bool       `json:"set"`
	ChangedAt *time.Time `json:"changed_at,omitempty"`
}

// PutPluginRequest enables or disables a plugin and sets its configuration.
// Config, when sent, replaces the settings; a secret setting (writeOnly in
// config_schema) is the exception: absent, it keeps its value; a value
// replaces it; null clears it.
type PutPluginRequest struct {
	Enabled *bool                      `json:"enabled" doc:"true or false (required)."`
	Config  map[string]json.RawMessage `json:"config,omitempty" doc:"The new settings, checked against the plugin's config_schema; absent or null keeps the current ones. A secret setting absent keeps its value, null clears it."`
}

func (s *Server) tenantPluginView(ctx context.Context, tenant uuid.UUID, st supervisor.Status) (PluginView, error) {
	set, err := s.Plugins.Enablement.Get(ctx, tenant, st.Name)
	if err != nil {
		return PluginView{}, err
	}
	v := PluginView{
		Name: st.Name, Version: st.Version, Description: st.Description, State: string(st.State),
		Enabled: set.Enabled, EnabledByDefault: st.EnabledByDefault,
		Secrets: SecretViews{}, Routes: nonNil(st.Routes), Permissions: nonNil(st.Permissions),
	}
	cfg := set.Config
	if m, ok := s.Plugins.Manifest(st.Name); ok {
		if len(m.ConfigSchemaJson) > 0 {
			if err := json.Unmarshal(m.ConfigSchemaJson, &v.ConfigSchema); err != nil {
				return PluginView{}, fmt.Errorf("configuration schema of plugin %q: %w", st.Name, err)
			}
		}
		cfg = withoutSettings(set.Config, m.Secrets)
		for _, name := range m.Secrets {
			sv := SecretView{}
			if sec, ok := set.Secrets[name]; ok {
				sv.Set, sv.ChangedAt = true, &sec.ChangedAt
			}
			v.Secrets[name] = sv
		}
	}
	if err := json.Unmarshal(cfg, &v.Config); len(cfg) > 0 && err != nil {
		return PluginView{}, fmt.Errorf("stored configuration of plugin %q is not a JSON object: %w", st.Name, err)
	}
	if v.Config == nil { // none stored, or null
		v.Config = map[string]json.RawMessage{}
	}
	return v, nil
}

func (s *Server) listTenantPlugins(c echo.Context) error {
	p := principalOf(c)
	out := whole([]PluginView{})
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
	if body.Config != nil {
		if cfg, err = json.Marshal(body.Config); err != nil {
			return err
		}
	}
	ch, err := s.splitSecrets(p.TenantID, name, m, cur, cfg)
	if err != nil {
		return err
	}
	if err := validatePluginConfig(m, ch.effective); err != nil {
		return err
	}
	cfg = ch.config
	set := supervisor.Setting{Enabled: *body.Enabled, Config: cfg}
	err = s.inTx(c, func(t *txc) error {
		if err := s.Plugins.Enablement.Put(ctx, t.Tx, p.TenantID, name, set, ch.secrets, p.UserID); err != nil {
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
		// Names of secret settings, never their values.
		data := map[string]any{"plugin": name, "version": st.Version, "enabled": set.Enabled, "config_changed": string(cfg) != string(cur.Config),
			"secrets_set": ch.set, "secrets_cleared": ch.cleared}
		if err := t.audit(p.TenantID, action, "plugin:"+name, data); err != nil {
			return err
		}
		// was_enabled tells a subscriber's catch-up (events v2) a plugin
		// turned on from a change of settings of one already on.
		id, err := t.eventID(event, p.TenantID, map[string]any{"plugin": name, "version": st.Version, "was_enabled": cur.Enabled})
		if err != nil || !set.Enabled || cur.Enabled {
			return err
		}
		// Turned on: the relay records where this event lands in the log,
		// the point from which live delivery starts (docs/events.md,
		// "Catch-up").
		_, err = t.Exec(ctx, `UPDATE kernel.tenant_plugins SET enabled_event = $3, enabled_seq = NULL WHERE tenant_id = $1 AND plugin = $2`,
			p.TenantID, name, id)
		return err
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
// violation names its setting (config.label) in words.
func validatePluginConfig(m *supervisor.Manifest, cfg json.RawMessage) error {
	vs := wire.CheckConfig(m.ConfigSchema, cfg, "config")
	if len(vs) == 0 {
		return nil
	}
	fields := make([]sdk.FieldError, len(vs))
	for i, v := range vs {
		fields[i] = sdk.FieldError{Field: v.Field, Message: v.Message}
	}
	return sdk.Invalid(fields...)
}

func (s *Server) listPlugins(c echo.Context) error {
	return c.JSON(http.StatusOK, whole(s.Plugins.Statuses()))
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

// pluginParamsProblem refuses, before a plugin's request is built, what a
// protobuf string cannot carry: bytes that are not UTF-8 (the call would
// fail as a 502). In a path or query parameter it is a 422 naming it, as
// on the kernel's routes; in a header passed on to the plugin, a 400
// naming it. (A NUL character is the route contract's to refuse.)
func pluginParamsProblem(params map[string]string, rawQuery string, h http.Header) error {
	var fe fieldErrors
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if !utf8.ValidString(params[k]) {
			fe.addf(k, "must be valid UTF-8")
		}
	}
	if q, err := url.ParseQuery(rawQuery); err == nil {
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if !utf8.ValidString(k) {
				fe.addf(strconv.QuoteToASCII(k), "parameter name must be valid UTF-8")
				continue
			}
			if slices.ContainsFunc(q[k], func(v string) bool { return !utf8.ValidString(v) }) {
				fe.addf(k, "must be valid UTF-8")
			}
		}
	}
	if err := fe.err(); err != nil {
		return err
	}
	for _, name := range wire.ForwardedHeaders {
		for _, v := range h.Values(name) {
			if !utf8.ValidString(v) {
				return problem.New(http.StatusBadRequest, "bad-request", "header "+name+" must be valid UTF-8")
			}
		}
	}
	return nil
}
