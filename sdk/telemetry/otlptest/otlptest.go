// Package otlptest is an OTLP/HTTP trace collector that runs inside a test:
// point a process's OTEL_EXPORTER_OTLP_ENDPOINT at its URL and read back
// the spans it exported. The kernel's tests use it to follow one request
// through the kernel and a plugin process; a plugin's tests can use it the
// same way.
package otlptest

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// Span is one exported span, flattened.
type Span struct {
	Service  string // the resource's service.name
	Scope    string // the instrumentation scope
	Name     string
	TraceID  string // hex
	SpanID   string // hex
	ParentID string // hex; "" for a root span
	Kind     string // "server", "client", "internal", "producer", "consumer"
	Attrs    map[string]string
	Links    []string // the trace IDs of the span's links
	Error    bool     // the span's status is an error
	Start    time.Time
}

// Collector receives OTLP/HTTP trace exports (protobuf, plain or gzipped)
// on POST /v1/traces.
type Collector struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []Span
}

// TB is the part of testing.TB the collector needs.
type TB interface {
	Cleanup(func())
	Helper()
}

// New starts a collector on loopback, stopped when the test ends.
func New(t TB) *Collector {
	t.Helper()
	c := &Collector{}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

// URL is the collector's base URL: the value of OTEL_EXPORTER_OTLP_ENDPOINT.
func (c *Collector) URL() string { return c.srv.URL }

// Env is the OTEL_* settings that send a process's spans here, exported
// every 50 ms.
func (c *Collector) Env() map[string]string {
	return map[string]string{
		"OTEL_TRACES_EXPORTER":        "otlp",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT": c.URL(),
		"OTEL_BSP_SCHEDULE_DELAY":     "50",
	}
}

// Spans returns the spans received so far.
func (c *Collector) Spans() []Span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Span(nil), c.spans...)
}

// Wait polls Spans until ok holds or timeout passes, and returns the last
// spans it saw.
func (c *Collector) Wait(timeout time.Duration, ok func([]Span) bool) ([]Span, bool) {
	deadline := time.Now().Add(timeout)
	for {
		spans := c.Spans()
		if ok(spans) {
			return spans, true
		}
		if time.Now().After(deadline) {
			return spans, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Collector) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []Span
	for _, rs := range req.ResourceSpans {
		service := ""
		if rs.Resource != nil {
			service = attrs(rs.Resource.Attributes)["service.name"]
		}
		for _, ss := range rs.ScopeSpans {
			scope := ""
			if ss.Scope != nil {
				scope = ss.Scope.Name
			}
			for _, s := range ss.Spans {
				sp := Span{
					Service: service, Scope: scope, Name: s.Name,
					TraceID: hex.EncodeToString(s.TraceId), SpanID: hex.EncodeToString(s.SpanId),
					Kind: kinds[int32(s.Kind)], Attrs: attrs(s.Attributes),
					Start: time.Unix(0, int64(s.StartTimeUnixNano)),
				}
				if len(s.ParentSpanId) > 0 {
					sp.ParentID = hex.EncodeToString(s.ParentSpanId)
				}
				for _, l := range s.Links {
					sp.Links = append(sp.Links, hex.EncodeToString(l.TraceId))
				}
				sp.Error = s.Status != nil && s.Status.Code == 2 // STATUS_CODE_ERROR
				got = append(got, sp)
			}
		}
	}
	c.mu.Lock()
	c.spans = append(c.spans, got...)
	c.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

var kinds = map[int32]string{0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	out := map[string]string{}
	for _, kv := range kvs {
		if kv.Value == nil {
			continue
		}
		switch v := kv.Value.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			out[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			out[kv.Key] = strconv.FormatInt(v.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			out[kv.Key] = strconv.FormatBool(v.BoolValue)
		}
	}
	return out
}
