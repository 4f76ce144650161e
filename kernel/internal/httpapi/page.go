package httpapi

import (
	"strconv"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/sdk"
)

// Every list of the API, the kernel's and the plugins', pages the same way
// with the same code: ?limit= (1 to 100, 50 when absent) and an opaque
// ?cursor= from the previous page's next_cursor, read by sdk.Request.Page
// and written by sdk.NewPage. A list that is not paginated is a page
// without a next_cursor (whole).

// PageQuery declares the ?limit= and ?cursor= of a paginated kernel route:
// what sdk.Request.Page reads, as a plugin's Paginated route declares them.
type PageQuery struct {
	Limit  int    `query:"limit" minimum:"1" maximum:"100" default:"50" doc:"Items per page (1 to 100, 50 when absent)."`
	Cursor string `query:"cursor" maxLength:"512" doc:"The next_cursor of the previous page."`
}

// pageRequest reads ?limit= and ?cursor= with the SDK's implementation: a
// 422 naming limit or cursor when either is not one this API accepts.
func pageRequest(c echo.Context) (sdk.PageRequest, error) {
	r := sdk.Request{Query: c.QueryParams()}
	return r.Page()
}

// whole is a list that is not paginated, as a page: items never null.
func whole[T any](items []T) sdk.Page[T] { return sdk.Page[T]{Items: nonNil(items)} }

// nonNil is the list, or an empty one for nil: the document promises an
// array, never null.
func nonNil[T any](items []T) []T {
	if items == nil {
		return []T{}
	}
	return items
}

// key is the sort key of a list ordered by one column, for sdk.NewPage.
func key(v string) []string { return []string{v} }

// badCursor is the answer to a cursor of another list.
func badCursor() error {
	return sdk.Invalid(sdk.FieldError{Field: "cursor", Message: "is not a cursor returned by this list"})
}

// afterString is the one-column key of the cursor ("" on the first page).
func afterString(p sdk.PageRequest) (string, error) {
	switch len(p.After) {
	case 0:
		return "", nil
	case 1:
		return p.After[0], nil
	}
	return "", badCursor()
}

// afterUUID is the UUID key of the cursor (uuid.Nil on the first page).
func afterUUID(p sdk.PageRequest) (uuid.UUID, error) {
	s, err := afterString(p)
	if err != nil || s == "" {
		return uuid.Nil, err
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, badCursor()
	}
	return id, nil
}

// afterInt is the positive integer key of the cursor (0 on the first
// page): a sequence number or a serial ID.
func afterInt(p sdk.PageRequest) (int64, error) {
	s, err := afterString(p)
	if err != nil || s == "" {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, badCursor()
	}
	return n, nil
}

// intKey is the key of a list ordered by an integer.
func intKey(n int64) []string { return key(strconv.FormatInt(n, 10)) }
