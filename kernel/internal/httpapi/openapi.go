package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"

	"github.com/edulure/edulure/kernel/internal/problem"
)

var pathParam = regexp.MustCompile(`:([a-z_]+)`)

// buildOpenAPI turns the route table into an OpenAPI 3 document.
func buildOpenAPI(routes []Route) ([]byte, error) {
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
	if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
		return nil, err
	}
	return json.Marshal(doc)
}

func operationID(r Route) string {
	p := strings.NewReplacer("/api/v1/", "", "/", "_", ":", "", ".", "_", "-", "_").Replace(strings.TrimPrefix(r.Path, "/"))
	return strings.ToLower(r.Method) + "_" + strings.Trim(p, "_")
}
