package sdk

import (
	"bytes"
	"encoding/json"
	"reflect"
)

// Optional is a field of a PATCH body that may be absent (leave the value
// as it is), null (clear it) or a value (set it):
//
//	type PatchCourse struct {
//		Title    sdk.Optional[string] `json:"title" minLength:"1" maxLength:"200"`
//		PassMark sdk.Optional[int]    `json:"pass_mark" minimum:"0" maximum:"100"`
//	}
//
// Its schema is T's, nullable and not required. Use NotNull for fields
// that may be left out but not cleared.
//
// Since: v1.2
type Optional[T any] struct {
	set   bool
	value *T
}

// Some is an Optional holding v.
func Some[T any](v T) Optional[T] { return Optional[T]{set: true, value: &v} }

// Set reports whether the field was sent (as a value or as null).
func (o Optional[T]) Set() bool { return o.set }

// Null reports whether the field was sent as null.
func (o Optional[T]) Null() bool { return o.set && o.value == nil }

// Get returns the value and whether there is one (sent, and not null).
func (o Optional[T]) Get() (T, bool) {
	if o.value == nil {
		var zero T
		return zero, false
	}
	return *o.value, true
}

// Ptr is the value, or nil when absent or null.
func (o Optional[T]) Ptr() *T { return o.value }

// NotNull returns the value and whether one was sent; a null becomes a
// 422 naming field.
func (o Optional[T]) NotNull(field string) (T, bool, error) {
	if o.Null() {
		var zero T
		return zero, false, Invalid(FieldError{Field: field, Message: "must not be null"})
	}
	v, ok := o.Get()
	return v, ok, nil
}

// UnmarshalJSON records that the field was sent, and its value.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.value = &v
	return nil
}

// MarshalJSON writes the value, or null.
func (o Optional[T]) MarshalJSON() ([]byte, error) {
	if o.value == nil {
		return []byte("null"), nil
	}
	return json.Marshal(*o.value)
}

// IsZero reports whether the field is absent, so that omitzero leaves it
// out.
func (o Optional[T]) IsZero() bool { return !o.set }

// WrappedType is T, for the schema generator.
func (Optional[T]) WrappedType() reflect.Type { return reflect.TypeFor[T]() }
