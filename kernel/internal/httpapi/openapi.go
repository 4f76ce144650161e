package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"

	"github.com/edulure/edulure/kernel/internal/problem"
	"github.com/edulure/edulure/kernel/internal/supervisor"
)

var pathParam = regexp.MustCompile(`:([a-z_]+)`)

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
	doc, err := buildOpenAPI(s.routes, targets)
	if err != nil {
		return nil, err
	}
	s.openapi.Store(&openAPICache{version: version, doc: doc})
	return doc, nil
}

// buildOpenAPI turns the route tables into an OpenAPI 3 document.
func buildOpenAPI(routes []Route, plugins []supervisor.Target) ([]byte, error) {
	doc := &openapi3.T{
		OpenAPI: "3.0.3",
		Info: &openapi3.Info{
			Title:       "Edulure platform API",
			Version:     "v1",
			Description: "One REST API for the kernel and every loaded plugin. Errors are RFC 9457 application/problem+json.",
		},
		Paths: openapi3.NewPaths(),
		Components: &openapi3.Components{
			Schemas: openapi3.Schemas{},
			SecuritySchemes: openapi3.SecuritySchemes{
				"bearer": &openapi3.SecuritySchemeRef{Value: openapi3.NewJWTSecurityScheme().WithDescription("An access token (JWT) or an API key (edk_...)")},
			},
		},
	}
	gen := openapi3gen.NewGenerator(openapi3gen.UseAllExportedFields())
	schema := func(v any) (*openapi3.SchemaRef, error) {
		return gen.NewSchemaRefForValue(v, doc.Components.Schemas)
	}
	problemSchema, err := schema(problem.Problem{})
	if err != nil {
		return nil, err
	}
	for _, r := range routes {
		op := &openapi3.Operation{Summary: r.Summary, Tags: []string{r.Tag}, OperationID: operationID(r), Responses: openapi3.NewResponses()}
		op.Responses.Delete("default")
		if r.Access != Public {
			op.Security = &openapi3.SecurityRequirements{{"bearer": []string{}}}
		}
		if r.Permission != "" {
			op.Extensions = map[string]any{"x-permission": r.Permission}
		}
		for _, m := range pathParam.FindAllStringSubmatch(r.Path, -1) {
			op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Value: openapi3.NewPathParameter(m[1]).WithSchema(openapi3.NewStringSchema())})
		}
		for _, q := range r.Query {
			op.Parameters = append(op.Parameters, &openapi3.ParameterRef{Value: openapi3.NewQueryParameter(q).WithSchema(openapi3.NewStringSchema())})
		}
		if r.Request != nil {
			s, err := schema(r.Request)
			if err != nil {
				return nil, err
			}
			op.RequestBody = &openapi3.RequestBodyRef{Value: openapi3.NewRequestBody().WithRequired(true).WithJSONSchemaRef(s)}
		}
		resp := openapi3.NewResponse().WithDescription(http.StatusText(r.Status))
		if r.Response != nil {
			s, err := schema(r.Response)
			if err != nil {
				return nil, err
			}
			resp = resp.WithJSONSchemaRef(s)
		}
		op.Responses.Set(strconv.Itoa(r.Status), &openapi3.ResponseRef{Value: resp})
		problemResp := &openapi3.ResponseRef{Value: openapi3.NewResponse().WithDescription("Problem details (RFC 9457)").
			WithContent(openapi3.Content{problem.ContentType: openapi3.NewMediaType().WithSchemaRef(problemSchema)})}
		op.Responses.Set("default", problemResp)
		doc.AddOperation(pathParam.ReplaceAllString(r.Path, "{$1}"), r.Method, op)
	}
	if err := addPluginComponents(doc, plugins); err != nil {
		return nil, err
	}
	for _, t := range plugins {
		r := t.Route
		op := &openapi3.Operation{Summary: r.Summary, Tags: []string{t.Plugin}, Responses: openapi3.NewResponses(),
			OperationID: t.Plugin + "_" + strings.ToLower(r.Method) + "_" + strings.NewReplacer("/api/v1/", "", "/", "_", "{", "", "}", "", ".", "_", "-", "_").Replace(r.Path.String())}
		op.Responses.Delete("default")
		op.Extensions = map[string]any{"x-plugin": t.Plugin}
		if !r.Public {
			op.Security = &openapi3.SecurityRequirements{{"bearer": []string{}}}
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
		op.Responses.Set("default", &openapi3.ResponseRef{Value: openapi3.NewResponse().WithDescription("Problem details (RFC 9457)").
			WithContent(openapi3.Content{problem.ContentType: openapi3.NewMediaType().WithSchemaRef(problemSchema)})})
		doc.AddOperation(r.Path.String(), r.Method, op)
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

// addPluginComponents adds the component schemas of each plugin (named
// <plugin>.<Type>, so they cannot clash) to the document.
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
