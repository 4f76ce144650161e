package wire

import (
	"net/http"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// StreamHeaders are the headers of a streamed answer (the first part of
// HandleHTTPStream) that reach the client: those in ReturnedHeaders, and
// a Content-Type of application/octet-stream when the plugin set none (none
// for a status that has no body). Since: v1.2
func StreamHeaders(head *pluginv1.HTTPResponsePart) http.Header {
	out := returned(head.Headers)
	switch {
	case Bodyless(StreamStatus(head)):
		out.Del("Content-Type")
	case out.Get("Content-Type") == "":
		out.Set("Content-Type", "application/octet-stream")
	}
	return out
}

// Bodyless reports whether an answer with status has no body (204, 304):
// the body a plugin sends with it is dropped.
func Bodyless(status int32) bool {
	return status == http.StatusNoContent || status == http.StatusNotModified
}

// StreamStatus is a streamed answer's status: the first part's, 200 when
// it has none.
func StreamStatus(head *pluginv1.HTTPResponsePart) int32 {
	if head.Status == 0 {
		return http.StatusOK
	}
	return head.Status
}
