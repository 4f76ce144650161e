// Package schema turns Go types into the schemas of the plugin contract and
// checks values against them. The SDK and the kernel share it, so that a
// limit written once in a struct tag is documented in /api/openapi.json and
// enforced at the kernel's door with the same words.
//
// Plugin authors do not call it: they write tags on the Go types they give
// sdk.Route, sdk.EventType and sdk.Manifest.Config.
//
//   - Generator makes OpenAPI 3.0 schema objects from Go types with
//     kin-openapi's openapi3gen, adding the tags below, "required" from the
//     Go type, and named struct types as components.
//   - JSONSchema converts such a schema (and its components) to JSON Schema
//     2020-12, which Compile turns into a validator.
//   - Validate checks a decoded JSON value and names each wrong field in
//     words a person understands.
//
// Tags on struct fields (besides encoding/json's):
//
//	doc:"..."              description
//	format:"uuid"          uuid, date-time, date, email, uri, ...
//	enum:"a,b,c"           allowed values (or a method Enum() []string on the type)
//	minLength, maxLength   string length in characters
//	minimum, maximum       numbers
//	minItems, maxItems     lists
//	pattern:"^[a-z]+$"     a regular expression strings must match
//	default:"..."          the default value
//	example:"..."          an example value
//	required:"true|false"  overrides the rule below
//	readOnly, writeOnly    "true"
//	secret:"true"          writeOnly: a secret the client sends and is never shown
//
// In a plugin's configuration (sdk.Manifest.Config), a setting marked
// secret:"true" (or writeOnly:"true") is a secret setting: the kernel seals
// it at rest, never shows it back, and delivers it to the plugin only inside
// its configuration; the schema carries no default for it. A top-level
// setting with a secret anywhere inside it is a secret as a whole.
//
// A field is required unless its json tag says omitempty or omitzero, it is
// an optional wrapper (see Wrapper), or it says required:"false". A pointer
// field is nullable. On a list, format, enum, length, pattern and range tags
// apply to its items.
package schema
