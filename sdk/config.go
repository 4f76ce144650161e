package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// Config is the plugin's configuration in force for the scope's
// institution: the institution's own settings over the operator's block in
// plugins.hcl over the defaults of Manifest.Config, decoded into T, the
// type of Manifest.Config. The kernel has checked each layer against the
// schema of T. For an event or a job run the institution's settings are
// read from the kernel (a call across the process boundary).
//
//	cfg, err := sdk.Config[Settings](ctx, req)
//
// Since: v1.2
func Config[T any](ctx context.Context, s Scope) (T, error) {
	var out T
	rt := s.runtime()
	if rt == nil || rt.configType == nil {
		return out, fmt.Errorf("Config[%T]: the manifest declares no Config", out)
	}
	if rt.configType != reflect.TypeFor[T]() {
		return out, fmt.Errorf("Config[%T]: the manifest's Config is a %s", out, rt.configType)
	}
	tenant, err := s.config(ctx)
	if err != nil {
		return out, err
	}
	if err := layer(&out, rt.configBase, rt.operator, tenant); err != nil {
		return out, fmt.Errorf("reading the configuration of institution %s: %w", s.Tenant(), err)
	}
	return out, nil
}

// OperatorConfig is the configuration the operator set for the whole
// installation (the block in plugins.hcl over the defaults of
// Manifest.Config), decoded into T: what Provision reads for settings that
// are not an institution's to change.
//
// Since: v1.2
func OperatorConfig[T any](env *Env) (T, error) {
	var out T
	rt := env.rt
	if rt == nil || rt.configType == nil {
		return out, fmt.Errorf("OperatorConfig[%T]: the manifest declares no Config", out)
	}
	if rt.configType != reflect.TypeFor[T]() {
		return out, fmt.Errorf("OperatorConfig[%T]: the manifest's Config is a %s", out, rt.configType)
	}
	if err := layer(&out, rt.configBase, rt.operator); err != nil {
		return out, fmt.Errorf("reading the operator's configuration: %w", err)
	}
	return out, nil
}

// layer decodes each JSON object into v in turn: later layers override the
// settings they hold. Unknown settings are refused.
func layer(v any, layers ...[]byte) error {
	for _, l := range layers {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return valueless(err)
		}
	}
	return nil
}

// valueless is a decoding error without the value that caused it:
// encoding/json quotes numbers it cannot store ("number 4242"), and a
// configuration may hold secrets, which no error message repeats.
func valueless(err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err
	}
	kind, _, _ := strings.Cut(te.Value, " ")
	if te.Field == "" {
		return fmt.Errorf("a JSON %s cannot be read into %s", kind, te.Type)
	}
	return fmt.Errorf("setting %s: a JSON %s cannot be read into %s", te.Field, kind, te.Type)
}

// reflect0 is a pointer to a new zero value of t.
func reflect0(t reflect.Type) any { return reflect.New(t).Interface() }
