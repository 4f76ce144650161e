package sdk

import (
	"errors"
	"net/url"
	"strconv"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestPageRoundTrip(t *testing.T) {
	t.Parallel()
	items := []int{1, 2, 3, 4}
	key := func(i int) []string { return []string{"2026-01-01T00:00:00Z", strconv.Itoa(i)} }
	p := NewPage(items, 3, key)
	require.Equal(t, []int{1, 2, 3}, p.Items)
	require.NotEmpty(t, p.NextCursor)

	req := &Request{Query: url.Values{"cursor": {p.NextCursor}, "limit": {"3"}}}
	pr, err := req.Page()
	require.NoError(t, err)
	require.Equal(t, PageRequest{Limit: 3, After: []string{"2026-01-01T00:00:00Z", "3"}}, pr)

	last := NewPage(items[:2], 3, key)
	require.Empty(t, last.NextCursor)
	require.NotNil(t, NewPage[int](nil, 3, key).Items, "an empty page encodes items as []")
}

func TestPageRefusesBadInput(t *testing.T) {
	t.Parallel()
	for _, q := range []url.Values{
		{"limit": {"0"}}, {"limit": {"101"}}, {"limit": {"x"}},
		{"cursor": {"not base64!"}}, {"cursor": {"bm90IGpzb24"}}, {"cursor": {"W10"}}, // "not json", "[]"
	} {
		_, err := (&Request{Query: q}).Page()
		require.ErrorIs(t, err, ErrInvalid, "%v", q)
	}
}

func TestUUIDParams(t *testing.T) {
	t.Parallel()
	r := &Request{Params: map[string]string{"id": "0B8D2C1E-4F8A-4C4B-9C1D-2E3F4A5B6C7D", "bad": "1"}, Query: url.Values{"u": {"x"}}}
	id, err := r.UUIDParam("id")
	require.NoError(t, err)
	require.Equal(t, "0b8d2c1e-4f8a-4c4b-9c1d-2e3f4a5b6c7d", id)
	_, err = r.UUIDParam("bad")
	require.True(t, errors.Is(err, ErrNotFound))
	_, err = r.QueryUUID("u")
	require.ErrorIs(t, err, ErrInvalid)
	v, err := r.QueryUUID("absent")
	require.NoError(t, err)
	require.Empty(t, v)
}

// FuzzPage: whatever a client sends as ?limit= and ?cursor=, Page answers a
// page request or a 422, and a cursor NewPage made reads back as its key.
func FuzzPage(f *testing.F) {
	f.Add("10", "WyIyMDI2IiwiYSJd", "x")
	f.Add("", "", "")
	f.Add("-1", "%%%", "\x00")
	f.Fuzz(func(t *testing.T, limit, cursor, key string) {
		pr, err := (&Request{Query: url.Values{"limit": {limit}, "cursor": {cursor}}}).Page()
		if err != nil {
			require.ErrorIs(t, err, ErrInvalid)
			return
		}
		require.True(t, pr.Limit >= 1 && pr.Limit <= 100)
		if !utf8.ValidString(key) {
			return // sort keys are timestamps and IDs; JSON would replace invalid bytes
		}
		p := NewPage([]string{"a", "b"}, 1, func(string) []string { return []string{key, "id"} })
		back, err := (&Request{Query: url.Values{"cursor": {p.NextCursor}}}).Page()
		if len(p.NextCursor) > 512 {
			require.ErrorIs(t, err, ErrInvalid, "an oversized cursor is refused")
			return
		}
		require.NoError(t, err)
		require.Equal(t, []string{key, "id"}, back.After)
	})
}
