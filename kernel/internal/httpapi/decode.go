package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

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
	// JSON is UTF-8 (RFC 8259 §8.1); encoding/json would quietly turn
	// other bytes into U+FFFD, storing what the client did not send.
	if !utf8.Valid(body) {
		return problem.New(http.StatusBadRequest, "malformed-json", "the body is not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonProblem(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return problem.New(http.StatusBadRequest, "malformed-json", "the request body must hold exactly one JSON value")
	}
	if field, ok := nulField(body); ok {
		p := problem.New(http.StatusUnprocessableEntity, "invalid-request", field+": "+nulMessage)
		p.Errors = []sdk.FieldError{{Field: field, Message: nulMessage}}
		return p
	}
	return nil
}

// nulMessage says why a NUL character is refused: Postgres stores no NUL in
// text (SQLSTATE 22021) or in jsonb (22P05), so a request holding one would
// fail at the database instead of naming its field.
const nulMessage = `must not contain a NUL character (\u0000)`

// nulField finds the first string (value or object key) of a valid JSON
// document that holds a NUL character, and names where it is:
// "name", "roles[2]", "config.title". It checks every value, also those a
// request keeps as raw JSON (a plugin's configuration is stored as jsonb).
func nulField(body []byte) (string, bool) {
	if !bytes.Contains(body, []byte(`\u0000`)) { // the only way to write NUL in JSON
		return "", false
	}
	type frame struct {
		array     bool
		index     int
		key       string
		expectKey bool
	}
	var stack []frame
	path := func(key string) string {
		var b strings.Builder
		for _, f := range stack {
			switch {
			case f.array:
				fmt.Fprintf(&b, "[%d]", f.index)
			case f.key != "":
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(f.key)
			}
		}
		if key != "" {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(key)
		}
		return b.String()
	}
	// valueDone moves the enclosing container past the value just read.
	valueDone := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].array {
				stack[n-1].index++
			} else {
				stack[n-1].expectKey = true
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		top := len(stack) - 1
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, frame{expectKey: true})
			case '[':
				stack = append(stack, frame{array: true})
			default:
				stack = stack[:top]
				valueDone()
			}
			continue
		case string:
			if top >= 0 && !stack[top].array && stack[top].expectKey {
				if strings.IndexByte(v, 0) >= 0 { // a key of a map or of raw JSON
					return path(strings.ReplaceAll(v, "\x00", `\u0000`)), true
				}
				stack[top].key, stack[top].expectKey = v, false
				continue
			}
			if strings.IndexByte(v, 0) >= 0 {
				return path(""), true
			}
		}
		valueDone()
	}
}

// textProblem says why s cannot be stored as Postgres text ("" when it
// can): a NUL character or bytes that are not UTF-8.
func textProblem(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		return nulMessage
	}
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	return ""
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

// noBody guards a route that takes no body: an empty body (or
// whitespace, or an empty JSON object) passes; anything else is refused
// as DecodeBody refuses it for a request without fields (400 not JSON or
// not an object, 422 naming the first field, 413 over the limit).
func noBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if req.ContentLength == 0 || req.Body == nil || req.Body == http.NoBody {
			return next(c)
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return bodyReadError(err)
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := DecodeBody(body, &struct{}{}); err != nil {
				if p, ok := err.(*problem.Problem); ok && p.Status == http.StatusUnprocessableEntity {
					p.Detail = "this route takes no body: " + p.Detail
				}
				return err
			}
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		return next(c)
	}
}

// checkParams refuses path and query parameters that Postgres cannot store
// as text (a NUL character, bytes that are not UTF-8) with a 422 naming the
// parameter, before a handler passes them to a query.
func checkParams(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := paramsProblem(c.ParamNames(), c.ParamValues(), c.Request().URL.RawQuery); err != nil {
			return err
		}
		return next(c)
	}
}

// paramsProblem checks path parameters (names and values pairwise) and a
// raw query string.
func paramsProblem(names, values []string, rawQuery string) error {
	var fe fieldErrors
	for i, v := range values {
		if i < len(names) {
			if why := textProblem(v); why != "" {
				fe.addf(names[i], "%s", why)
			}
		}
	}
	if rawQuery != "" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return sdk.Invalid(sdk.FieldError{Field: "query", Message: "is not a valid query string: " + err.Error()})
		}
		keys := make([]string, 0, len(q))
		for k := range q {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			name := k
			if textProblem(k) != "" {
				name = strconv.QuoteToASCII(k)
				fe.addf(name, "parameter name %s", textProblem(k))
				continue
			}
			for _, v := range q[k] {
				if why := textProblem(v); why != "" {
					fe.addf(name, "%s", why)
					break
				}
			}
		}
	}
	return fe.err()
}

// pathUUID reads a UUID path parameter.
func pathUUID(c echo.Context, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		return uuid.Nil, sdk.Errorf(sdk.ErrNotFound, "%s %q is not a valid ID", name, c.Param(name))
	}
	return id, nil
}
