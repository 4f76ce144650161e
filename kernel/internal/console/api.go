package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
)

// apiResult is an answer of the kernel's /api/v1.
type apiResult struct {
	Status  int
	Body    map[string]any // a JSON object answer (nil otherwise)
	Raw     []byte
	Problem *apiProblem // a problem+json answer
}

// apiProblem is an RFC 9457 problem document of the API.
type apiProblem struct {
	Status int          `json:"status"`
	Code   string       `json:"code"`
	Title  string       `json:"title"`
	Detail string       `json:"detail"`
	Errors []fieldError `json:"errors"`
}

type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ok says whether the answer is a 2xx.
func (r *apiResult) ok() bool { return r.Status >= 200 && r.Status < 300 }

// items is a list answer's items.
func (r *apiResult) items() []map[string]any {
	return objects(r.Body["items"])
}

// fields maps each field the API named in a 422 to its messages.
func (r *apiResult) fields() map[string]string {
	out := map[string]string{}
	if r.Problem == nil {
		return out
	}
	for _, e := range r.Problem.Errors {
		if out[e.Field] != "" {
			out[e.Field] += "; "
		}
		out[e.Field] += e.Message
	}
	return out
}

// message is what to tell a person about a failed call.
func (r *apiResult) message() string {
	if r.Problem != nil {
		if r.Problem.Detail != "" {
			return r.Problem.Detail
		}
		return r.Problem.Title
	}
	return fmt.Sprintf("the API answered %d", r.Status)
}

// call sends one request to the kernel's API in-process: the API's own
// handler, with the caller's access token (empty: none), client address and
// User-Agent, so that rate limits, sessions and audit see the browser.
func (c *Console) call(r *http.Request, token, method, path string, body any) *apiResult {
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return &apiResult{Status: http.StatusInternalServerError, Problem: &apiProblem{Detail: "encoding the request: " + err.Error()}}
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, rd)
	if err != nil {
		return &apiResult{Status: http.StatusBadRequest, Problem: &apiProblem{Status: 400, Detail: err.Error()}}
	}
	if body == nil {
		req.Body = http.NoBody // as a server's request has: never nil
	}
	req.RemoteAddr = r.RemoteAddr
	req.Host = r.Host
	req.TLS = r.TLS
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ua := r.UserAgent(); ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	if id := r.Header.Get("X-Request-ID"); id != "" {
		req.Header.Set("X-Request-ID", id)
	}
	for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Proto"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	rec := httptest.NewRecorder()
	c.api.ServeHTTP(rec, req)
	res := &apiResult{Status: rec.Code, Raw: rec.Body.Bytes()}
	ct := rec.Header().Get("Content-Type")
	if strings.Contains(ct, "json") && len(res.Raw) > 0 {
		if strings.Contains(ct, "problem") {
			res.Problem = &apiProblem{}
			_ = json.Unmarshal(res.Raw, res.Problem)
		} else {
			_ = json.Unmarshal(res.Raw, &res.Body)
		}
	}
	if !res.ok() && res.Problem == nil {
		res.Problem = &apiProblem{Status: res.Status, Detail: http.StatusText(res.Status)}
	}
	return res
}

// objects is a JSON array of objects (nil for anything else).
func objects(v any) []map[string]any {
	arr, _ := v.([]any)
	out := make([]map[string]any, 0, len(arr))
	for _, x := range arr {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// str is a JSON value as text.
func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprintf("%d", int64(x))
		}
		return fmt.Sprint(x)
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			parts = append(parts, str(e))
		}
		return strings.Join(parts, ", ")
	default:
		j, _ := json.Marshal(x)
		return string(j)
	}
}

// strs is a JSON array of strings.
func strs(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func pathEscape(s string) string { return url.PathEscape(s) }
