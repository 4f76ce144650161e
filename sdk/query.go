package sdk

import (
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/edulure/edulure/sdk/schema"
)

// Query reads the request's query parameters into a T, the struct type
// the route declares in Route.Query: each field from the parameter its
// `query` tag (else its json name) names. The kernel has checked the
// values against the field's schema; a value that still does not convert
// is a 422 naming the parameter. Fields are strings, booleans, integers,
// floats, time.Time (RFC 3339), pointers to those (nil when absent) and
// slices of those (the parameter repeated). An absent parameter takes its
// field's `default` tag, when it has one.
//
//	type ListQuery struct {
//		Status string `query:"status" enum:"draft,published"`
//		Author string `query:"author" format:"uuid"`
//	}
//	q, err := sdk.Query[ListQuery](req)
//
// Since: v1.2
func Query[T any](req *Request) (T, error) {
	var out T
	v := reflect.ValueOf(&out).Elem()
	if v.Kind() != reflect.Struct {
		return out, fmt.Errorf("Query[%T]: query parameters are read into a struct", out)
	}
	var bad []FieldError
	for i := range v.NumField() {
		f := v.Type().Field(i)
		name, ok := schema.QueryName(f)
		if !ok || !f.IsExported() {
			continue
		}
		vals := req.Query[name]
		if len(vals) == 0 {
			d, ok := f.Tag.Lookup("default")
			if !ok {
				continue
			}
			vals = []string{d} // absent: the default its schema documents
		}
		if err := setQuery(v.Field(i), vals); err != nil {
			bad = append(bad, FieldError{Field: name, Message: err.Error()})
		}
	}
	if len(bad) > 0 {
		return out, Invalid(bad...)
	}
	return out, nil
}

var timeType = reflect.TypeFor[time.Time]()

func setQuery(field reflect.Value, vals []string) error {
	switch {
	case field.Kind() == reflect.Slice:
		s := reflect.MakeSlice(field.Type(), len(vals), len(vals))
		for i, x := range vals {
			if err := setScalar(s.Index(i), x); err != nil {
				return err
			}
		}
		field.Set(s)
		return nil
	case field.Kind() == reflect.Pointer:
		p := reflect.New(field.Type().Elem())
		if err := setScalar(p.Elem(), vals[0]); err != nil {
			return err
		}
		field.Set(p)
		return nil
	}
	return setScalar(field, vals[0])
}

func setScalar(v reflect.Value, s string) error {
	if v.Type() == timeType {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("must be a date and time in RFC 3339 form, such as 2026-12-01T09:30:00Z")
		}
		v.Set(reflect.ValueOf(t))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("must be true or false")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("must be an integer")
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("must be a whole number")
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("must be a number")
		}
		v.SetFloat(f)
	default:
		return fmt.Errorf("cannot be read into a %s", v.Type())
	}
	return nil
}
