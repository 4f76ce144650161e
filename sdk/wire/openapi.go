package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/getkin/kin-openapi/openapi3"
)

// OpenAPISchema parses and checks a route's request or response schema: an
// OpenAPI 3.0 schema object, as the kernel merges it into its OpenAPI
// document. JSON Schema forms that OpenAPI 3.0 lacks are refused here, at
// the plugin's tests, rather than when the kernel loads the plugin: a type
// list (["integer", "null"]; use "nullable": true), "type": "null", "const",
// "$defs".
func OpenAPISchema(raw []byte) (*openapi3.Schema, error) {
	ref, err := OpenAPISchemaIn(raw, nil)
	if err != nil {
		return nil, err
	}
	return ref.Value, nil
}

// OpenAPISchemaIn is OpenAPISchema for a schema that may refer to the
// manifest's components ("$ref": "#/components/schemas/<name>"). The
// references are resolved, and a reference to a missing component is an
// error.
func OpenAPISchemaIn(raw []byte, components openapi3.Schemas) (*openapi3.SchemaRef, error) {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || b[0] != '{' || !json.Valid(b) {
		return nil, errors.New("a request or response schema must be a JSON object")
	}
	ref := &openapi3.SchemaRef{}
	if err := json.Unmarshal(b, ref); err != nil {
		return nil, fmt.Errorf("schema is not a valid OpenAPI 3.0 schema: %w", err)
	}
	if err := resolve(components, ref); err != nil {
		return nil, err
	}
	return ref, nil
}

// resolve resolves the references of components and of one more schema
// (may be nil) against components, and validates them all as OpenAPI 3.0.
func resolve(components openapi3.Schemas, extra *openapi3.SchemaRef) error {
	doc := &openapi3.T{
		OpenAPI: "3.0.3", Info: &openapi3.Info{Title: "manifest", Version: "0"}, Paths: openapi3.NewPaths(),
		Components: &openapi3.Components{Schemas: openapi3.Schemas{}},
	}
	for k, v := range components {
		doc.Components.Schemas[k] = v
	}
	const extraName = "edulure-route-schema"
	if extra != nil {
		doc.Components.Schemas[extraName] = extra
	}
	if err := openapi3.NewLoader().ResolveRefsIn(doc, nil); err != nil {
		return fmt.Errorf("schema refers to something the manifest does not define: %w", err)
	}
	for name, s := range doc.Components.Schemas {
		if s.Value == nil {
			return fmt.Errorf("schema %q is a reference to nothing", name)
		}
		if err := s.Value.Validate(context.Background()); err != nil {
			if name == extraName {
				return fmt.Errorf("schema is not a valid OpenAPI 3.0 schema: %w", err)
			}
			return fmt.Errorf("component %q is not a valid OpenAPI 3.0 schema: %w", name, err)
		}
	}
	return nil
}
