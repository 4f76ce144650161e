package wire

import "net/http"

// Kind is one error kind of the protocol (pluginv1.Error.kind): its name on
// the wire, the HTTP status the kernel answers with and the problem code it
// uses when the handler gave none. The kernel and sdk/plugintest both read
// this table. Append-only.
type Kind struct {
	Name   string
	Status int
	Code   string
}

// Kinds are the protocol's error kinds; Internal is the answer to anything
// else.
var Kinds = []Kind{
	{"invalid", http.StatusUnprocessableEntity, "invalid-request"},
	{"bad_request", http.StatusBadRequest, "bad-request"},
	{"unauthorized", http.StatusUnauthorized, "unauthorized"},
	{"forbidden", http.StatusForbidden, "forbidden"},
	{"not_found", http.StatusNotFound, "not-found"},
	{"conflict", http.StatusConflict, "conflict"},
	{"gone", http.StatusGone, "gone"},
	{"too_many_requests", http.StatusTooManyRequests, "rate-limited"},
	{"unavailable", http.StatusServiceUnavailable, "unavailable"},
	{"too_large", http.StatusRequestEntityTooLarge, "too-large"}, // Since: v1.2
}

// Internal is the kind of a handler's failure that is not one of Kinds:
// the client gets a 500 naming the plugin, never the error's text.
var Internal = Kind{"internal", http.StatusInternalServerError, "plugin-error"}

// KindNamed is the Kind of a wire name; Internal for unknown names.
func KindNamed(name string) Kind {
	for _, k := range Kinds {
		if k.Name == name {
			return k
		}
	}
	return Internal
}
