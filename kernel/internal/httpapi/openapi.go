package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/edulure/edulure/kernel/internal/problem"
	"github.com/edulure/edulure/kernel/internal/supervisor"
	"github.com/edulure/edulure/sdk/schema"
	"github.com/edulure/edulure/sdk/wire"
)

// The OpenAPI document covers the kernel's routes, made from the route
// table and the kernel's Go types by the generator plugins use
// (sdk/schema), and the loaded plugins' routes with the schemas their
// manifests carry. The kernel's component schemas are named after their Go
// types (Tenant, Problem); a plugin's carry its name (courses.Course), so
// the two cannot clash.

var pathParam = regexp.MustCompile(`:([a-z_]+)`)

// openAPITags are the kernel's groups of operations; each plugin's
// operations are tagged with its name.
var openAPITags = openapi3.Tags{
	{Name: "operations", Description: "Liveness, readiness, Prometheus metrics and this document: for operators, load balancers and tools."},
	{Name: "auth", Description: "Accounts and credentials: signup, login with a second factor, token refresh and switch, email verification, password reset, and the keys that verify access tokens."},
	{Name: "me", Description: "The caller: who they are, what they may do, their sessions, two-factor authentication and invitations."},
	{Name: "tenant", Description: "The caller's institution: settings, members, invitations, roles, API keys, plugin settings and the audit log."},
	{Name: "privacy", Description: "Personal data: what the platform holds about people, exports of a person's data, erasure requests with their cool-off and steps across the kernel and every plugin."},
	{Name: "events", Description: "Events the plugins publish and their deliveries to subscribers, with replay of failed deliveries."},
	{Name: "jobs", Description: "Jobs the plugins declare, their runs, and runs on demand."},
	{Name: "platform", Description: "Platform operators: institutions, installed plugins, token signing keys and the platform audit chain."},
}

// problemResponses are the shared answers of components/responses: one per
// problem status an operation documents, and "Problem" for any other.
var problemResponses = map[int]string{
	http.StatusBadRequest:            "The request is malformed: a body that is not one JSON object (malformed-json), a body that cannot be read (bad-request), or an Idempotency-Key over 255 characters (bad-idempotency-key).",
	http.StatusUnauthorized:          "No credentials, or credentials that are not valid: missing-credentials, token-expired, token-malformed, token-signature, token-unknown-key, token-key-retired, session-revoked, api-key-revoked, api-key-expired, api-key-creator-removed, a login's bad-credentials and invalid codes or tokens, or metrics-credentials (the operator protects /metrics).",
	http.StatusForbidden:             "The credentials are valid but may not do this: permission-denied, tenant-required, operator-required, user-required, not-a-member, exceeds-own-permissions, email-unverified, self-signup-disabled, invitation-email-mismatch, metrics-forbidden (an address EDULURE_METRICS_ALLOW does not list).",
	http.StatusNotFound:              "No such resource, or none the caller may see (not-found); for a plugin's route, also plugin-not-enabled for the caller's institution.",
	http.StatusConflict:              "The resource's state does not allow this: conflict, email-taken, slug-taken, already-member, last-admin, role-in-use, mfa-already-enabled, mfa-not-enrolled, mfa-not-enabled, invitation-not-pending, email-unverified, email-already-verified, cannot-retire-key, delivery-pending, idempotency-key-in-use, object-exists (a plugin's write-once object).",
	http.StatusGone:                  "A token or invitation that was used, revoked or has expired: invalid-reset-token, invalid-verification-token, invalid-invitation.",
	http.StatusRequestEntityTooLarge: "The body is larger than the kernel's limit (EDULURE_BODY_LIMIT_BYTES): body-too-large.",
	http.StatusUnsupportedMediaType:  "The body is not application/json: unsupported-media-type.",
	http.StatusUnprocessableEntity:   "A field or parameter is wrong: invalid-request, with errors naming each; or idempotency-key-reused.",
	http.StatusTooManyRequests:       "Too many requests, or a lockout: rate-limited, account-locked, mfa-locked. Retry-After says when to try again.",
	http.StatusBadGateway:            "The plugin serving the route failed or stopped while handling the request: plugin-error, plugin-crashed.",
	http.StatusServiceUnavailable:    "The plugin serving the route is not running or is at its concurrency limit (plugin-unavailable, plugin-busy), or it answered unavailable. Retry-After says when to try again.",
	http.StatusGatewayTimeout:        "The plugin serving the route did not answer in time: plugin-timeout.",
}

// pluginProblemStatuses are the problem statuses of every plugin route: the
// kernel's checks (credentials, enablement, permission, body size, the
// route's contract), the protocol's error kinds, and the plugin's failures.
func pluginProblemStatuses() []int {
	out := []int{http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusRequestEntityTooLarge,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
	for _, k := range wire.Kinds {
		out = append(out, k.Status)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

type openAPICache struct {
	version uint64
	doc     []byte
}

// openAPIDocument is the document for the kernel's routes and the plugins'
// current ones, rebuilt when the plugin route table changes.
func (s *Server) openAPIDocument() ([]byte, error) {
	targets, version := s.Plugins.Routes()
	if c := s.openapi.Load(); c != nil && c.version == version {
		return c.doc, nil
	}
	about := map[string]string{}
	for _, st := range s.Plugins.Statuses() {
		about[st.Name] = st.Description
	}
	doc, err := buildOpenAPI(s.routes, targets, about)
	if err != nil {
		return nil, err
	}
	s.openapi.Store(&openAPICache{version: version, doc: doc})
	return doc, nil
}

// buildOpenAPI turns the route tables into an OpenAPI 3 document. about
// describes each plugin, by name.
func buildOpenAPI(routes []Route, plugins []supervisor.Target, about map[string]string) ([]byte, error) {
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info: &openapi3.Info{
			Title:   "Edulure platform API",
			Version: "v1",
			Description: "One REST API for the kernel and every loaded plugin. Send credentials as 'Authorization: Bearer <access token or API key>'. " +
				"Lists take ?limit= (1 to 100) and ?cursor= (the next_cursor of the previous page). " +
				"Errors are RFC 9457 application/problem+json documents with a code, and errors naming each wrong field. " +
				"Any request whose request line and headers pass the server's limit gets 431 headers-too-large, before any route.",
		},
		Servers: openapi3.Servers{{URL: "/", Description: "This kernel: every path is absolute from its origin."}},
		Paths:   openapi3.NewPaths(),
		Components: &openapi3.Components{
			Schemas:    openapi3.Schemas{},
			Responses:  openapi3.ResponseBodies{},
			Parameters: openapi3.ParametersMap{},
			SecuritySchemes: openapi3.SecuritySchemes{
				"bearer": &openapi3.SecuritySchemeRef{Value: openapi3.NewJWTSecurityScheme().WithDescription("An access token (JWT) or an API key (edk_...)")},
			},
		},
	}
	b := &docBuilder{doc: doc, gen: schema.NewGenerator("")}
	if err := b.sharedComponents(); err != nil {
		return nil, err
	}
	tags := map[string]bool{}
	for _, t := range openAPITags {
		tags[t.Name] = true
		doc.Tags = append(doc.Tags, t)
	}
	for _, r := range routes {
		if !tags[r.Tag] {
			return nil, fmt.Errorf("route %s %s: tag %q is not one of openAPITags", r.Method, r.Path, r.Tag)
		}
		op, err := b.kernelOperation(r)
		if err != nil {
			return nil, fmt.Errorf("route %s %s: %w", r.Method, r.Path, err)
		}
		doc.AddOperation(pathParam.ReplaceAllString(r.Path, "{$1}"), r.Method, op)
	}
	for name, s := range b.gen.Components() {
		if strings.Contains(name, ".") {
			return nil, fmt.Errorf("kernel schema %q: the names of the kernel's schemas have no dot (a plugin's have)", name)
		}
		doc.Components.Schemas[name] = s
	}
	if err := addPluginComponents(doc, plugins); err != nil {
		return nil, err
	}
	for _, t := range plugins {
		if !tags[t.Plugin] {
			tags[t.Plugin] = true
			desc := about[t.Plugin]
			if desc == "" {
				desc = "Routes of the " + t.Plugin + " plugin."
			}
			doc.Tags = append(doc.Tags, &openapi3.Tag{Name: t.Plugin, Description: desc})
		}
		op, err := b.pluginOperation(t)
		if err != nil {
			return nil, fmt.Errorf("plugin %q route %s: %w", t.Plugin, t.Route.Key, err)
		}
		doc.AddOperation(t.Route.Path.String(), t.Route.Method, op)
	}
	if err := uniqueOperationIDs(doc); err != nil {
		return nil, err
	}
	// Plugins' schemas refer to their components by name: resolve the
	// references so the document can be checked whole.
	if err := openapi3.NewLoader().ResolveRefsIn(doc, nil); err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

// docBuilder adds operations to a document, with one schema generator for
// every kernel type.
type docBuilder struct {
	doc        *openapi3.T
	gen        *schema.Generator
	pathParams map[string]schema.Param
}

const (
	responseRef     = "#/components/responses/"
	parameterRef    = "#/components/parameters/"
	problemResponse = "Problem"
	idempotencyKey  = "IdempotencyKey"
)

// responseName names the shared response of a problem status:
// "UnprocessableEntity".
func responseName(status int) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return -1
	}, http.StatusText(status))
}

// sharedComponents adds the problem responses, the Idempotency-Key header
// and the kernel's path parameters.
func (b *docBuilder) sharedComponents() error {
	problemSchema, err := b.gen.Schema(problem.Problem{})
	if err != nil {
		return err
	}
	problemContent := openapi3.Content{problem.ContentType: openapi3.NewMediaType().WithSchemaRef(problemSchema)}
	retryAfter := &openapi3.HeaderRef{Value: &openapi3.Header{Parameter: openapi3.Parameter{
		Description: "Seconds to wait before trying again.", Schema: openapi3.NewIntegerSchema().WithMin(0).NewRef(),
	}}}
	for status, desc := range problemResponses {
		resp := openapi3.NewResponse().WithDescription(desc).WithContent(problemContent)
		switch status {
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			resp.Headers = openapi3.Headers{"Retry-After": retryAfter}
		case http.StatusUnauthorized:
			resp.Headers = openapi3.Headers{"WWW-Authenticate": &openapi3.HeaderRef{Value: &openapi3.Header{Parameter: openapi3.Parameter{
				Description: `Bearer realm="edulure"`, Schema: openapi3.NewStringSchema().NewRef(),
			}}}}
		}
		b.doc.Components.Responses[responseName(status)] = &openapi3.ResponseRef{Value: resp}
	}
	b.doc.Components.Responses[problemResponse] = &openapi3.ResponseRef{Value: openapi3.NewResponse().
		WithDescription("Any other problem (RFC 9457): an internal error (500) or a request that did not finish in time (503, timeout).").
		WithContent(problemContent)}
	b.doc.Components.Parameters[idempotencyKey] = &openapi3.ParameterRef{Value: openapi3.NewHeaderParameter("Idempotency-Key").
		WithDescription("Makes a retry safe: the first successful answer is stored and replayed (Idempotent-Replayed: true) for a retry with the same key and body.").
		WithSchema(openapi3.NewStringSchema().WithMinLength(1).WithMaxLength(255))}
	params, err := schema.Params(PathParams{})
	if err != nil {
		return err
	}
	b.pathParams = map[string]schema.Param{}
	for _, p := range params {
		b.pathParams[p.Name] = p
	}
	return nil
}

// sharedResponse refers to a shared response.
func (b *docBuilder) sharedResponse(name string) *openapi3.ResponseRef {
	return &openapi3.ResponseRef{Ref: responseRef + name, Value: b.doc.Components.Responses[name].Value}
}

// problems documents the operation's problem statuses, and any other
// problem as the default answer.
func (b *docBuilder) problems(op *openapi3.Operation, statuses []int) error {
	for _, st := range statuses {
		name := responseName(st)
		if _, ok := b.doc.Components.Responses[name]; !ok || problemResponses[st] == "" {
			return fmt.Errorf("problem status %d has no shared response in problemResponses", st)
		}
		op.Responses.Set(strconv.Itoa(st), b.sharedResponse(name))
	}
	op.Responses.Set("default", b.sharedResponse(problemResponse))
	return nil
}

func (b *docBuilder) kernelOperation(r Route) (*openapi3.Operation, error) {
	op := &openapi3.Operation{Summary: r.Summary, Tags: []string{r.Tag}, OperationID: operationID(r), Responses: openapi3.NewResponses()}
	op.Responses.Delete("default")
	op.Security = security(r.Access != Public)
	op.Extensions = map[string]any{}
	if r.Permission != "" {
		op.Extensions["x-permission"] = r.Permission
	}
	if r.PlatformPermission != "" {
		op.Extensions["x-platform-permission"] = r.PlatformPermission
	}
	for _, m := range pathParam.FindAllStringSubmatch(r.Path, -1) {
		p, ok := b.pathParams[m[1]]
		if !ok {
			return nil, fmt.Errorf("path parameter %q is not declared in PathParams", m[1])
		}
		op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Value: openapi3.NewPathParameter(p.Name).WithSchema(p.Schema).WithDescription(p.Description)})
	}
	if r.Query != nil {
		params, err := schema.Params(r.Query)
		if err != nil {
			return nil, err
		}
		for _, p := range params {
			op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Value: openapi3.NewQueryParameter(p.Name).WithSchema(p.Schema).WithDescription(p.Description).WithRequired(p.Required)})
		}
	}
	if r.Idempotent {
		op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Ref: parameterRef + idempotencyKey, Value: b.doc.Components.Parameters[idempotencyKey].Value})
	}
	if r.Request != nil {
		s, err := b.gen.Schema(r.Request)
		if err != nil {
			return nil, err
		}
		op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(!r.BodyOptional).WithJSONSchemaRef(s)}
	}
	resp, err := b.response(r.Status, r.Response, r.ContentType)
	if err != nil {
		return nil, err
	}
	op.Responses.Set(strconv.Itoa(r.Status), resp)
	for status, body := range r.Also {
		resp, err := b.response(status, body, "")
		if err != nil {
			return nil, err
		}
		op.Responses.Set(strconv.Itoa(status), resp)
	}
	return op, b.problems(op, r.problemStatuses())
}

// response documents an answer with a body of body's type (none when nil).
func (b *docBuilder) response(status int, body any, contentType string) (*openapi3.ResponseRef, error) {
	resp := openapi3.NewResponse().WithDescription(http.StatusText(status))
	if body != nil {
		s, err := b.gen.Schema(body)
		if err != nil {
			return nil, err
		}
		if contentType == "" {
			contentType = "application/json"
		}
		resp.WithContent(openapi3.Content{contentType: openapi3.NewMediaType().WithSchemaRef(s)})
	}
	return &openapi3.ResponseRef{Value: resp}, nil
}

func (b *docBuilder) pluginOperation(t supervisor.Target) (*openapi3.Operation, error) {
	r := t.Route
	op := &openapi3.Operation{Summary: r.Summary, Tags: []string{t.Plugin}, Responses: openapi3.NewResponses(),
		OperationID: t.Plugin + "_" + strings.ToLower(r.Method) + "_" + strings.NewReplacer("/api/v1/", "", "/", "_", "{", "", "}", "", ".", "_", "-", "_").Replace(r.Path.String())}
	op.Responses.Delete("default")
	op.Extensions = map[string]any{"x-plugin": t.Plugin}
	op.Security = security(!r.Public) // a public route still honours a token sent
	if !r.Public {
		op.Extensions["x-permission"] = r.Permission
	}
	for _, name := range r.Path.Params() {
		op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Value: openapi3.NewPathParameter(name).WithSchema(openapi3.NewStringSchema())})
	}
	params, err := pluginQuery(r)
	if err != nil {
		return nil, err
	}
	op.Parameters = append(op.Parameters, params...)
	if len(r.RequestSchemaJson) > 0 {
		sch, err := pluginSchema(r.RequestSchemaJson)
		if err != nil {
			return nil, err
		}
		op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(r.Contract.BodyRequired()).WithJSONSchemaRef(sch)}
	}
	status := int(r.SuccessStatus)
	if status == 0 {
		status = http.StatusOK
	}
	resp := openapi3.NewResponse().WithDescription(http.StatusText(status))
	if r.Stream {
		resp = streamedResponse(op, r, status)
	}
	if len(r.ResponseSchemaJson) > 0 {
		sch, err := pluginSchema(r.ResponseSchemaJson)
		if err != nil {
			return nil, err
		}
		resp = resp.WithJSONSchemaRef(sch)
	}
	op.Responses.Set(strconv.Itoa(status), &openapi3.ResponseRef{Value: resp})
	return op, b.problems(op, pluginProblemStatuses())
}

// security is an operation's: the bearer scheme, or none (an empty list,
// which says so rather than leaving it unsaid).
func security(needed bool) *openapi3.SecurityRequirements {
	if !needed {
		return &openapi3.SecurityRequirements{}
	}
	return &openapi3.SecurityRequirements{{"bearer": []string{}}}
}

// uniqueOperationIDs refuses a document in which two operations share an
// ID (client generators name methods after them).
func uniqueOperationIDs(doc *openapi3.T) error {
	seen := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if prev, dup := seen[op.OperationID]; dup {
				return fmt.Errorf("operationId %q of %s %s is also %s's", op.OperationID, method, path, prev)
			}
			seen[op.OperationID] = method + " " + path
		}
	}
	return nil
}

// addPluginComponents adds the component schemas of each plugin (named
// <plugin>.<Type>, so they cannot clash with another's or the kernel's) to
// the document.
func addPluginComponents(doc *openapi3.T, plugins []supervisor.Target) error {
	seen := map[string]bool{}
	for _, t := range plugins {
		comps := t.Route.Components
		if seen[t.Plugin] || len(comps) == 0 {
			continue
		}
		seen[t.Plugin] = true
		var schemas openapi3.Schemas
		if err := json.Unmarshal(comps, &schemas); err != nil {
			return fmt.Errorf("components of plugin %q: %w", t.Plugin, err)
		}
		for name, s := range schemas {
			if !strings.HasPrefix(name, t.Plugin+".") {
				return fmt.Errorf("component %q of plugin %q: a plugin's component names start with %q", name, t.Plugin, t.Plugin+".")
			}
			doc.Components.Schemas[name] = s
		}
	}
	return nil
}

// pluginSchema is a route's request or response schema as the document
// holds it: a reference to a component stays a reference.
func pluginSchema(raw []byte) (*openapi3.SchemaRef, error) {
	ref := &openapi3.SchemaRef{}
	if err := json.Unmarshal(raw, ref); err != nil {
		return nil, err
	}
	return ref, nil
}

// pluginQuery documents a route's query parameters with their schemas.
func pluginQuery(r *supervisor.Route) (openapi3.Parameters, error) {
	var out openapi3.Parameters
	if len(r.QueryParams) == 0 {
		for _, q := range r.Query {
			out = append(out, &openapi3.ParameterRef{Value: openapi3.NewQueryParameter(q).WithSchema(openapi3.NewStringSchema())})
		}
		return out, nil
	}
	for _, q := range r.QueryParams {
		s := &openapi3.Schema{}
		if err := json.Unmarshal(q.SchemaJson, s); err != nil {
			return nil, fmt.Errorf("query parameter %q: %w", q.Name, err)
		}
		p := openapi3.NewQueryParameter(q.Name).WithSchema(s).WithDescription(q.Description).WithRequired(q.Required)
		if s.Type.Is("array") {
			explode := true
			p.Explode = &explode
		}
		out = append(out, &openapi3.ParameterRef{Value: p})
	}
	return out, nil
}

func operationID(r Route) string {
	p := strings.NewReplacer("/api/v1/", "", "/", "_", ":", "", ".", "_", "-", "_").Replace(strings.TrimPrefix(r.Path, "/"))
	return strings.ToLower(r.Method) + "_" + strings.Trim(p, "_")
}
