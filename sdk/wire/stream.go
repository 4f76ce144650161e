package wire

import (
	"net/http"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// StreamHeaders are the headers of a streamed answer (the first part of
// HandleHTTPStream) that reach the client: those in ReturnedHeaders, and
// a Content-Type of application/octet-stream when the plugin set none.
// Since: v1.2
func StreamHeaders(head *pluginv1.HTTPResponsePart) http.Header {
	out := returned(head.Headers)
	if out.Get("Content-Type") == "" {
		out.Set("Content-Type", "application/octet-stream")
	}
	return out
}

// StreamStatus is a streamed answer's status: the first part's, 200 when
// it has none.
func StreamStatus(head *pluginv1.HTTPResponsePart) int32 {
	if head.Status == 0 {
		return http.StatusOK
	}
	return head.Status
}
