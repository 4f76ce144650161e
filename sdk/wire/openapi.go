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
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || b[0] != '{' || !json.Valid(b) {
		return nil, errors.New("a request or response schema must be a JSON object")
	}
	s := &openapi3.Schema{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("schema is not a valid OpenAPI 3.0 schema: %w", err)
	}
	if err := s.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("schema is not a valid OpenAPI 3.0 schema: %w", err)
	}
	return s, nil
}
