package sdk

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Page is one page of a list, in the shape every list of the API has: the
// items and, when there are more, an opaque cursor for the next page
// (?cursor=).
//
// Since: v1.1
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// PageRequest is what a list request asks for.
//
// Since: v1.1
type PageRequest struct {
	// Limit is ?limit=: 1 to 100, 50 when absent.
	Limit int
	// After is the sort key of the last item of the previous page, as the
	// handler gave it to NewPage; nil on the first page.
	After []string
}

// Page reads ?limit= and ?cursor=, answering a precise 422 for a limit out
// of range or a cursor this API did not hand out.
//
// Since: v1.1
func (r *Request) Page() (PageRequest, error) {
	p := PageRequest{Limit: 50}
	if v := r.Query.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return PageRequest{}, Invalid(FieldError{Field: "limit", Message: "must be an integer from 1 to 100"})
		}
		p.Limit = n
	}
	if v := r.Query.Get("cursor"); v != "" {
		after, ok := decodeCursor(v)
		if !ok {
			return PageRequest{}, Invalid(FieldError{Field: "cursor", Message: "is not a cursor returned by this API"})
		}
		p.After = after
	}
	return p, nil
}

// NewPage builds the page from up to limit+1 items fetched in sort order
// (fetch one more than the limit to know whether a next page exists). key
// gives an item's sort key, which the next request's PageRequest.After
// holds.
//
// Since: v1.1
func NewPage[T any](items []T, limit int, key func(T) []string) Page[T] {
	p := Page[T]{Items: items}
	if p.Items == nil {
		p.Items = []T{}
	}
	if len(items) > limit {
		p.Items = items[:limit]
		b, _ := json.Marshal(key(items[limit-1])) // a []string always encodes
		p.NextCursor = base64.RawURLEncoding.EncodeToString(b)
	}
	return p
}

// TimeKey is the sort key of an item of a list ordered by a time and then
// an ID (created_at, id): give it to NewPage, and read it back with
// PageRequest.AfterTime.
//
//	page := sdk.NewPage(items, p.Limit, func(c Course) []string { return sdk.TimeKey(c.CreatedAt, c.ID) })
//
// Since: v1.2
func TimeKey(t time.Time, id string) []string {
	return []string{t.UTC().Format(time.RFC3339Nano), id}
}

// AfterTime reads the (time, ID) key TimeKey made: ok is false on the first
// page, and a cursor holding another kind of key is a 422 naming cursor.
//
// Since: v1.2
func (p PageRequest) AfterTime() (t time.Time, id string, ok bool, err error) {
	if p.After == nil {
		return time.Time{}, "", false, nil
	}
	bad := Invalid(FieldError{Field: "cursor", Message: "is not a cursor returned by this API"})
	if len(p.After) != 2 || !IsUUID(p.After[1]) {
		return time.Time{}, "", false, bad
	}
	t, perr := time.Parse(time.RFC3339Nano, p.After[0])
	if perr != nil {
		return time.Time{}, "", false, bad
	}
	return t, strings.ToLower(p.After[1]), true, nil
}

func decodeCursor(s string) ([]string, bool) {
	if len(s) > 512 {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil || len(out) == 0 {
		return nil, false
	}
	for _, k := range out {
		if strings.IndexByte(k, 0) >= 0 || !utf8.ValidString(k) {
			return nil, false // no key this API hands out holds these
		}
	}
	return out, true
}

// UUIDParam reads a path parameter that must be a UUID, in lowercase. A
// value that is not one names no resource: the error is ErrNotFound, as the
// kernel answers for its own IDs.
//
// Since: v1.1
func (r *Request) UUIDParam(name string) (string, error) {
	v := r.Params[name]
	id, err := uuid.Parse(v)
	if err != nil || len(v) != 36 {
		return "", Errorf(ErrNotFound, "%s %q is not a valid ID", name, v)
	}
	return id.String(), nil
}

// QueryUUID reads an optional query parameter that must be a UUID: "" when
// absent, a 422 naming it when malformed.
//
// Since: v1.1
func (r *Request) QueryUUID(name string) (string, error) {
	v := strings.TrimSpace(r.Query.Get(name))
	if v == "" {
		return "", nil
	}
	id, err := uuid.Parse(v)
	if err != nil || len(v) != 36 {
		return "", Invalid(FieldError{Field: name, Message: "must be a UUID"})
	}
	return id.String(), nil
}
