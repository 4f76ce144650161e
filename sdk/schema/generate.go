package schema

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3gen"
	"github.com/google/uuid"
)

// Wrapper is implemented by types whose schema is another type's, optional
// and nullable: sdk.Optional[T] for PATCH bodies.
type Wrapper interface {
	WrappedType() reflect.Type
}

// Enumerated is implemented by named types that list their allowed values,
// so that every field of the type gets the enum without a tag.
type Enumerated interface {
	Enum() []string
}

// ComponentRef is the prefix of references to component schemas.
const ComponentRef = "#/components/schemas/"

var (
	timeType    = reflect.TypeFor[time.Time]()
	uuidType    = reflect.TypeFor[uuid.UUID]()
	wrapperType = reflect.TypeFor[Wrapper]()
	enumType    = reflect.TypeFor[Enumerated]()
	textType    = reflect.TypeFor[encoding.TextMarshaler]()
	jsonType    = reflect.TypeFor[json.Marshaler]()
)

// Generator makes OpenAPI 3.0 schemas from Go types. Named struct types
// become components named prefix+TypeName, shared by every schema the
// Generator makes; generic types are inlined.
type Generator struct {
	prefix     string
	components openapi3.Schemas
	gen        *openapi3gen.Generator
	inline     bool
	fieldName  func(reflect.StructField) (string, bool)
}

// NewGenerator returns a Generator whose components are named prefix+Name
// ("courses." for the courses plugin, "" for the kernel).
func NewGenerator(prefix string) *Generator {
	g := &Generator{prefix: prefix, components: openapi3.Schemas{}}
	g.gen = openapi3gen.NewGenerator(
		openapi3gen.UseAllExportedFields(),
		openapi3gen.CreateComponentSchemas(openapi3gen.ExportComponentSchemasOptions{ExportComponentSchemas: true, ExportTopLevelSchema: true}),
		openapi3gen.CreateTypeNameGenerator(func(t reflect.Type) string {
			if t.Name() == "" {
				return "" // an anonymous struct is written inline
			}
			return prefix + t.Name()
		}),
		openapi3gen.SchemaCustomizer(g.customize),
	)
	return g
}

// newInlineGenerator makes schemas without components, naming struct fields
// by name (a query struct's fields by their query tag).
func newInlineGenerator(name func(reflect.StructField) (string, bool)) *Generator {
	g := &Generator{components: openapi3.Schemas{}, inline: true, fieldName: name}
	opts := []openapi3gen.Option{openapi3gen.UseAllExportedFields(), openapi3gen.SchemaCustomizer(g.customize)}
	if name != nil {
		opts = append(opts, openapi3gen.CreateFieldNameGenerator(func(f reflect.StructField, def string) string {
			if n, ok := name(f); ok {
				return n
			}
			return def
		}))
	}
	g.gen = openapi3gen.NewGenerator(opts...)
	return g
}

// Components are the component schemas made so far, by name.
func (g *Generator) Components() openapi3.Schemas { return g.components }

// Schema is the schema of v's type: a reference to a component for a named
// struct type, the schema itself otherwise.
func (g *Generator) Schema(v any) (*openapi3.SchemaRef, error) {
	if v == nil {
		return nil, fmt.Errorf("no value to make a schema of")
	}
	ref, err := g.gen.NewSchemaRefForValue(v, g.components)
	if err != nil {
		return nil, fmt.Errorf("schema of %T: %w", v, err)
	}
	if ref == nil {
		return nil, fmt.Errorf("schema of %T: the type has no JSON form", v)
	}
	return ref, nil
}

// customize applies the tags and the required rule; openapi3gen calls it
// for each type it meets, with the tag of the field it came from.
func (g *Generator) customize(_ string, t reflect.Type, tag reflect.StructTag, s *openapi3.Schema) error {
	if t.Implements(wrapperType) || reflect.PointerTo(t).Implements(wrapperType) {
		return g.wrap(t, tag, s)
	}
	textForm(t, s)
	if t.Kind() == reflect.Struct && t != timeType {
		g.structRules(t, s)
		if t.Name() != "" && !g.inline {
			return nil // a component: a field's tags must not change the shared type
		}
	}
	if t.Implements(enumType) && s.Type.Is("string") {
		for _, v := range reflect.Zero(t).Interface().(Enumerated).Enum() {
			s.Enum = append(s.Enum, v)
		}
	}
	return applyTags(tag, s)
}

// textForm makes the schema of a type that encodes itself as JSON text
// (encoding.TextMarshaler, and not json.Marshaler) a string: openapi3gen
// describes its Go kind instead (uuid.UUID: an array of 16 bytes, which it
// leaves as the empty schema). A uuid.UUID is a string of format uuid.
// Struct types are left to openapi3gen, which makes them components.
func textForm(t reflect.Type, s *openapi3.Schema) {
	if t.Kind() == reflect.Struct || (!t.Implements(textType) && !reflect.PointerTo(t).Implements(textType)) ||
		t.Implements(jsonType) || reflect.PointerTo(t).Implements(jsonType) {
		return
	}
	*s = openapi3.Schema{Type: &openapi3.Types{"string"}, Nullable: s.Nullable}
	if t == uuidType {
		s.Format = "uuid"
	}
}

// wrap replaces the schema of a Wrapper with its wrapped type's, nullable.
func (g *Generator) wrap(t reflect.Type, tag reflect.StructTag, s *openapi3.Schema) error {
	w := reflect.Zero(t).Interface().(Wrapper)
	inner := newInlineGenerator(nil)
	if !g.inline {
		inner = g
	}
	elem, err := inner.gen.GenerateSchemaRef(w.WrappedType())
	if err != nil {
		return err
	}
	if inner != g {
		clearTypeRefs(elem)
	}
	if elem.Ref != "" && strings.HasPrefix(elem.Ref, ComponentRef) {
		*s = *nullableRef(openapi3.NewSchemaRef(elem.Ref, nil))
		if inner == g && elem.Value != nil && elem.Value.Properties != nil {
			g.components[strings.TrimPrefix(elem.Ref, ComponentRef)] = openapi3.NewSchemaRef("", elem.Value)
		}
		return nil
	}
	*s = *elem.Value
	s.Nullable = true
	if err := applyTags(tag, s); err != nil {
		return err
	}
	return nil
}

// structRules sets "required" and makes nullable the references of pointer
// fields to components (OpenAPI 3.0 ignores siblings of $ref).
func (g *Generator) structRules(t reflect.Type, s *openapi3.Schema) {
	s.Required = nil
	for _, f := range jsonFields(t, g.fieldName) {
		p := s.Properties[f.name]
		if p == nil {
			continue
		}
		if f.required {
			s.Required = append(s.Required, f.name)
		}
		if f.typ.Kind() == reflect.Pointer && p.Ref != "" && strings.HasPrefix(p.Ref, ComponentRef) {
			s.Properties[f.name] = openapi3.NewSchemaRef("", nullableRef(p))
		}
	}
}

// nullableRef is a reference to a component that may also be null. OpenAPI
// 3.0 ignores the siblings of $ref, so the reference is wrapped in allOf;
// and "nullable" takes effect only beside a "type" (OpenAPI 3.0.3), which
// for a component, a Go struct, is object.
func nullableRef(ref *openapi3.SchemaRef) *openapi3.Schema {
	return &openapi3.Schema{Type: &openapi3.Types{"object"}, AllOf: openapi3.SchemaRefs{ref}, Nullable: true}
}

type jsonField struct {
	name     string
	typ      reflect.Type
	tag      reflect.StructTag
	required bool
}

// jsonFields lists a struct's fields as encoding/json sees them, with the
// required rule applied. name, when set, names fields (query structs).
func jsonFields(t reflect.Type, name func(reflect.StructField) (string, bool)) []jsonField {
	var out []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		n, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && n == "" {
			ft := f.Type
			ptr := ft.Kind() == reflect.Pointer
			if ptr {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for _, e := range jsonFields(ft, name) {
					// encoding/json leaves out every field of a nil
					// embedded pointer: none of them can be required.
					e.required = e.required && !ptr
					out = append(out, e)
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if n == "" {
			n = f.Name
		}
		if name != nil {
			if qn, ok := name(f); ok {
				n = qn
			}
		}
		optional := slices.Contains(strings.Split(opts, ","), "omitempty") || slices.Contains(strings.Split(opts, ","), "omitzero") ||
			f.Type.Implements(wrapperType) || reflect.PointerTo(f.Type).Implements(wrapperType)
		switch f.Tag.Get("required") {
		case "true":
			optional = false
		case "false":
			optional = true
		}
		out = append(out, jsonField{name: n, typ: f.Type, tag: f.Tag, required: !optional})
	}
	return out
}

// applyTags applies a field's tags to its schema, or to its items for a
// list.
func applyTags(tag reflect.StructTag, s *openapi3.Schema) error {
	if tag == "" {
		return nil
	}
	num := func(key string) (*float64, error) {
		v, ok := tag.Lookup(key)
		if !ok {
			return nil, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("tag %s:%q is not a number", key, v)
		}
		return &f, nil
	}
	count := func(key string) (*uint64, error) {
		v, ok := tag.Lookup(key)
		if !ok {
			return nil, nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("tag %s:%q is not a count", key, v)
		}
		return &n, nil
	}
	if d, ok := tag.Lookup("doc"); ok {
		s.Description = d
	}
	if s.Type.Is("array") {
		var err error
		if n, e := count("minItems"); e != nil {
			err = e
		} else if n != nil {
			s.MinItems = *n
		}
		if n, e := count("maxItems"); e != nil {
			err = e
		} else if n != nil {
			s.MaxItems = n
		}
		return err // the item tags were applied when the items were made
	}
	if v, ok := tag.Lookup("format"); ok && (s.Type.Is("string") || s.Type.Is("integer") || s.Type.Is("number")) {
		s.Format = v
	}
	if v, ok := tag.Lookup("enum"); ok {
		s.Enum = nil
		for _, e := range strings.Split(v, ",") {
			val, err := scalar(s, strings.TrimSpace(e))
			if err != nil {
				return fmt.Errorf("tag enum:%q: %w", v, err)
			}
			s.Enum = append(s.Enum, val)
		}
	}
	if s.Type.Is("string") {
		if n, err := count("minLength"); err != nil {
			return err
		} else if n != nil {
			s.MinLength = *n
		}
		if n, err := count("maxLength"); err != nil {
			return err
		} else if n != nil {
			s.MaxLength = n
		}
		if v, ok := tag.Lookup("pattern"); ok {
			s.Pattern = v
		}
	}
	if s.Type.Is("integer") || s.Type.Is("number") {
		if f, err := num("minimum"); err != nil {
			return err
		} else if f != nil {
			s.Min = f
		}
		if f, err := num("maximum"); err != nil {
			return err
		} else if f != nil {
			s.Max = f
		}
	}
	for key, val := range map[string]*any{"default": &s.Default, "example": &s.Example} {
		if v, ok := tag.Lookup(key); ok {
			x, err := scalar(s, v)
			if err != nil {
				return fmt.Errorf("tag %s:%q: %w", key, v, err)
			}
			*val = x
		}
	}
	s.ReadOnly = s.ReadOnly || tag.Get("readOnly") == "true"
	// secret:"true" is writeOnly said for what it means to the kernel: a
	// setting it seals, delivers and never shows back.
	s.WriteOnly = s.WriteOnly || tag.Get("writeOnly") == "true" || tag.Get("secret") == "true"
	return nil
}

// scalar parses a tag's text as a value of the schema's type.
func scalar(s *openapi3.Schema, v string) (any, error) {
	switch {
	case s.Type.Is("integer"):
		return strconv.ParseInt(v, 10, 64)
	case s.Type.Is("number"):
		return strconv.ParseFloat(v, 64)
	case s.Type.Is("boolean"):
		return strconv.ParseBool(v)
	case s.Type.Is("string"):
		return v, nil
	}
	var x any
	if err := json.Unmarshal([]byte(v), &x); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	return x, nil
}

// clearTypeRefs removes the type names openapi3gen leaves in the Ref of
// inline schemas (NewSchemaRefForValue does it for the schemas it returns).
func clearTypeRefs(r *openapi3.SchemaRef) {
	if r == nil {
		return
	}
	if !strings.HasPrefix(r.Ref, ComponentRef) {
		r.Ref = ""
	}
	if s := r.Value; s != nil {
		clearTypeRefs(s.Items)
		for _, p := range s.Properties {
			clearTypeRefs(p)
		}
		clearTypeRefs(s.AdditionalProperties.Schema)
		for _, l := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for _, x := range l {
				clearTypeRefs(x)
			}
		}
	}
}
