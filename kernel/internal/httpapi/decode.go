package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/problem"
	"github.com/edulure/edulure/sdk"
)

// decodeJSON reads a request body into dst strictly: JSON media type, one
// value, no unknown fields, right types. Each failure is a precise 4xx.
func decodeJSON(c echo.Context, dst any) error {
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return problem.New(http.StatusUnsupportedMediaType, "unsupported-media-type", "send the body as application/json")
		}
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return bodyReadError(err)
	}
	return DecodeBody(body, dst)
}

// bodyReadError turns a failure to read a request body into a problem: a
// body over the limit is a 413 whether it had a Content-Length or not.
func bodyReadError(err error) error {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return problem.New(http.StatusRequestEntityTooLarge, "body-too-large", fmt.Sprintf("request body is larger than the limit of %d bytes", maxErr.Limit))
	}
	// echo's BodyLimit reports a chunked body over the limit while it is read.
	var he *echo.HTTPError
	if errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge {
		return he
	}
	return problem.New(http.StatusBadRequest, "bad-request", "could not read the request body")
}

// DecodeBody decodes a JSON document strictly into dst. It is the request
// decoder of every kernel route (and the target of its fuzz test).
func DecodeBody(body []byte, dst any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return problem.New(http.StatusBadRequest, "malformed-json", "the request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return problem.New(http.StatusBadRequest, "malformed-json", "the request body must hold exactly one JSON value")
	}
	return nil
}

func jsonProblem(err error) *problem.Problem {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return problem.New(http.StatusBadRequest, "malformed-json", fmt.Sprintf("the body is not valid JSON: %v (at byte %d)", syn, syn.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return problem.New(http.StatusBadRequest, "malformed-json", "the body is not valid JSON: it ends too early")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			p := problem.New(http.StatusBadRequest, "malformed-json", fmt.Sprintf("the body must be a JSON object, not %s", typ.Value))
			return p
		}
		p := problem.New(http.StatusUnprocessableEntity, "invalid-request", fmt.Sprintf("%s: must be %s, not %s", field, jsonKind(typ.Type.Kind().String()), typ.Value))
		p.Errors = []sdk.FieldError{{Field: field, Message: fmt.Sprintf("must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)}}
		return p
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		quoted := strings.TrimPrefix(err.Error(), "json: unknown field ")
		name, uerr := strconv.Unquote(quoted) // encoding/json quotes the name with %q
		if uerr != nil {
			name = strings.Trim(quoted, `"`)
		}
		p := problem.New(http.StatusUnprocessableEntity, "invalid-request", fmt.Sprintf("unknown field %q", name))
		p.Errors = []sdk.FieldError{{Field: name, Message: "is not a field of this request"}}
		return p
	default:
		return problem.New(http.StatusBadRequest, "malformed-json", "the body is not valid JSON: "+err.Error())
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	}
	return "of another type"
}

// fieldErrors collects validation failures.
type fieldErrors []sdk.FieldError

func (f *fieldErrors) add(fe *sdk.FieldError) {
	if fe != nil {
		*f = append(*f, *fe)
	}
}

func (f *fieldErrors) addf(field, format string, args ...any) {
	*f = append(*f, sdk.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return sdk.Invalid(f...)
}

// pathUUID reads a UUID path parameter.
func pathUUID(c echo.Context, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		return uuid.Nil, sdk.Errorf(sdk.ErrNotFound, "%s %q is not a valid ID", name, c.Param(name))
	}
	return id, nil
}
