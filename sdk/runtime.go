package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/trace"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// runtime is a provisioned plugin: its compiled manifest and what its
// handlers reach through Request, Event and JobRun. The served plugin
// (server.go) and sdk/plugintest run requests, events and jobs through it,
// so a plugin's tests take the production code path.
type runtime struct {
	*compiled
	plugin   Plugin
	logger   hclog.Logger
	db       *DB
	host     Host
	operator json.RawMessage // the operator's configuration block
	env      *Env
	blobs    pluginv1.HostClient // the kernel's object storage calls; nil: none
	observability
}

// newRuntime provisions the plugin behind c: a DB on pool (nil: none), the
// Env, and the plugin's Provision. blobs, when set, serves the object
// storage calls; wake, when set, is the EventsPublished hint. tp makes the
// plugin's spans; nil, or tracing false: none.
func newRuntime(ctx context.Context, p Plugin, c *compiled, logger hclog.Logger, pool *pgxpool.Pool, host Host, blobs pluginv1.HostClient, operator json.RawMessage, wake func(), tp trace.TracerProvider, tracing bool) (*runtime, error) {
	rt := &runtime{compiled: c, plugin: p, logger: logger, host: host, blobs: blobs, operator: orEmptyObject(operator), observability: newObservability(tp, tracing)}
	if !json.Valid(rt.operator) {
		return nil, errors.New("the operator's configuration is not JSON")
	}
	if rt.host == nil {
		rt.host = noHost{}
	}
	if pool != nil {
		rt.db = &DB{Pool: pool, rt: rt, wake: wake}
	}
	if c.configType != nil {
		// The kernel checked the operator's block against the schema at
		// load; this reading only fails if the plugin was served without it.
		var v = reflect0(c.configType)
		if err := layer(v, c.configBase, rt.operator); err != nil {
			return nil, fmt.Errorf("the operator's configuration of plugin %q: %w", c.wire.Name, err)
		}
	}
	rt.env = &Env{
		Logger: logger, DB: rt.db, Host: rt.host, OperatorConfig: rt.operator,
		Metrics: rt.metrics, Tracer: rt.tp.Tracer(c.wire.Name), rt: rt,
	}
	if pv, ok := p.(Provisioner); ok {
		if err := pv.Provision(ctx, rt.env); err != nil {
			return nil, err
		}
	}
	return rt, nil
}

func (rt *runtime) tx(ctx context.Context, tenantID string, fn func(pgx.Tx) error) error {
	if rt == nil || rt.db == nil {
		return Errorf(ErrUnavailable, "the plugin has no database")
	}
	return rt.db.InTenant(ctx, tenantID, fn)
}

func (rt *runtime) publish(ctx context.Context, tx pgx.Tx, ev Outgoing) error {
	if rt == nil || rt.db == nil {
		return Errorf(ErrUnavailable, "the plugin has no database")
	}
	return rt.db.Publish(ctx, tx, ev)
}

// handleHTTP runs one forwarded request: it decodes in, calls the route's
// handler, turns a panic into a logged internal error, and encodes the
// answer or the error for the kernel.
func (rt *runtime) handleHTTP(ctx context.Context, in *pluginv1.HTTPRequest) *pluginv1.HTTPResponse {
	return rt.traceHTTP(ctx, in, func(ctx context.Context) *pluginv1.HTTPResponse { return rt.serveHTTP(ctx, in) })
}

func (rt *runtime) serveHTTP(ctx context.Context, in *pluginv1.HTTPRequest) *pluginv1.HTTPResponse {
	h, ok := rt.routes[in.Route]
	if !ok {
		return &pluginv1.HTTPResponse{Error: encodeError(Errorf(ErrNotFound, "the plugin has no route %q", in.Route))}
	}
	resp, err := rt.call(ctx, h, rt.request(in))
	if err != nil {
		return &pluginv1.HTTPResponse{Error: encodeError(err)}
	}
	out := &pluginv1.HTTPResponse{Status: int32(resp.Status), Body: resp.Body}
	if out.Status == 0 {
		out.Status = http.StatusOK
	}
	if len(resp.Header) > 0 {
		out.Headers = make(map[string]*pluginv1.Values, len(resp.Header))
		for k, v := range resp.Header {
			out.Headers[k] = &pluginv1.Values{Values: v}
		}
	}
	return out
}

// request decodes a forwarded request.
func (rt *runtime) request(in *pluginv1.HTTPRequest) *Request {
	req := &Request{
		Route: in.Route, Method: in.Method, Path: in.Path,
		Params: in.PathParams, Query: url.Values{}, Header: http.Header{},
		Body: in.Body, RequestID: in.RequestId, Config: orEmptyObject(in.TenantConfigJson),
		Principal: decodePrincipal(in.Principal), rt: rt,
	}
	if req.Params == nil {
		req.Params = map[string]string{}
	}
	for k, v := range in.Query {
		req.Query[k] = v.Values
	}
	for k, v := range in.Headers {
		req.Header[http.CanonicalHeaderKey(k)] = v.Values
	}
	if in.DeadlineUnixMs > 0 {
		req.Deadline = time.UnixMilli(in.DeadlineUnixMs)
	}
	return req
}

// call runs a handler, turning a panic into an internal error so one bad
// request cannot take the plugin down.
func (rt *runtime) call(ctx context.Context, h Handler, req *Request) (resp *Response, err error) {
	defer func() {
		if v := recover(); v != nil {
			rt.logger.Error("handler panicked", "route", req.Route, "request_id", req.RequestID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			resp, err = nil, fmt.Errorf("handler panicked: %v", v)
		}
	}()
	resp, err = h(ctx, req)
	if err == nil && resp == nil {
		err = errors.New("handler returned neither a response nor an error")
	}
	if err != nil && kindName(err) == "internal" {
		rt.logger.Error("handler failed", "route", req.Route, "request_id", req.RequestID, "tenant", req.Principal.TenantID, "error", err)
	}
	return resp, err
}

func (rt *runtime) hostOrNone() Host {
	if rt == nil {
		return noHost{}
	}
	return rt.host
}

// noHost is the Host of a plugin served without one.
type noHost struct{}

func (noHost) Authorize(context.Context, Principal, string, Resource) (bool, error) {
	return false, Errorf(ErrUnavailable, "no kernel host services here")
}
func (noHost) Audit(context.Context, AuditEntry) error {
	return Errorf(ErrUnavailable, "no kernel host services here")
}
func (noHost) TenantConfig(context.Context, string) (json.RawMessage, bool, error) {
	return nil, false, Errorf(ErrUnavailable, "no kernel host services here")
}
func (noHost) Membership(context.Context, string, string) (Membership, error) {
	return Membership{}, Errorf(ErrUnavailable, "no kernel host services here")
}
func (noHost) RetentionClasses(context.Context, string) ([]RetentionClassInfo, error) {
	return nil, Errorf(ErrUnavailable, "no kernel host services here")
}
func (noHost) ApplyRetention(context.Context, string, RetentionRequest) (RetentionResult, error) {
	return RetentionResult{}, Errorf(ErrUnavailable, "no kernel host services here")
}
func (noHost) Grants(context.Context, string) ([]Grant, error) {
	return nil, Errorf(ErrUnavailable, "no kernel host services here")
}
func (noHost) RevokeGrant(context.Context, Principal, string, GrantRef, string) error {
	return Errorf(ErrUnavailable, "no kernel host services here")
}
func (noHost) Sign(context.Context, string, []byte) (Signature, error) {
	return Signature{}, Errorf(ErrUnavailable, "no kernel host services here")
}

func decodePrincipal(p *pluginv1.Principal) Principal {
	if p == nil {
		return Principal{Kind: Anonymous}
	}
	return Principal{
		Kind: PrincipalKind(p.Kind), UserID: p.UserId, APIKeyID: p.ApiKeyId, TenantID: p.TenantId,
		Roles: p.Roles, Permissions: p.Permissions, Operator: p.Operator,
	}
}

func encodePrincipal(p Principal) *pluginv1.Principal {
	return &pluginv1.Principal{
		Kind: string(p.Kind), UserId: p.UserID, ApiKeyId: p.APIKeyID, TenantId: p.TenantID,
		Roles: p.Roles, Permissions: p.Permissions, Operator: p.Operator,
	}
}

// encodeError is the wire form of a handler's error. Details of errors that
// are not sdk errors stay in the plugin's log, not in the client's answer.
func encodeError(err error) *pluginv1.Error {
	out := &pluginv1.Error{Kind: kindName(err)}
	if out.Kind == "internal" {
		out.Detail = "the plugin failed to handle the request; its log has the details"
		return out
	}
	var se *Error
	if errors.As(err, &se) {
		out.Code, out.Detail, out.RetryAfterSeconds = se.Code, se.Detail, int32(se.RetryAfterSeconds)
		for _, f := range se.Fields {
			out.Fields = append(out.Fields, &pluginv1.FieldError{Field: f.Field, Message: f.Message})
		}
		return out
	}
	out.Detail = err.Error()
	return out
}

func orEmptyObject(b []byte) []byte {
	if len(b) == 0 {
		return []byte("{}")
	}
	return b
}

// handleHTTPStream runs one forwarded request for a streamed route: the
// handler writes to a Stream whose parts go to send. A handler's error
// before the first part is the first part's Error; after it, the returned
// error ends the call, and the kernel cuts the client's response short.
func (rt *runtime) handleHTTPStream(ctx context.Context, in *pluginv1.HTTPRequest, send func(*pluginv1.HTTPResponsePart) error) error {
	sr, ok := rt.streams[in.Route]
	if !ok {
		return send(&pluginv1.HTTPResponsePart{Error: encodeError(Errorf(ErrNotFound, "the plugin has no streamed route %q", in.Route))})
	}
	req := rt.request(in)
	w := newStream(send, sr.contentType, time.Duration(in.StreamIdleTimeoutMs)*time.Millisecond)
	herr := rt.callStream(ctx, sr.handler, req, w)
	started, ferr := w.finish(herr)
	switch {
	case ctx.Err() != nil:
		return ctx.Err() // the kernel ended the stream: nobody is listening
	case herr == nil:
		return ferr
	case !started:
		return send(&pluginv1.HTTPResponsePart{Error: encodeError(herr)})
	}
	if kindName(herr) != "internal" { // internal errors are logged already
		rt.logger.Warn("handler failed after its answer began", "route", req.Route, "request_id", req.RequestID, "error", herr)
	}
	return fmt.Errorf("the handler failed after its answer began: %w", herr)
}

// callStream runs a stream handler, turning a panic into an internal error.
func (rt *runtime) callStream(ctx context.Context, h StreamHandler, req *Request, w *Stream) (err error) {
	defer func() {
		if v := recover(); v != nil {
			rt.logger.Error("handler panicked", "route", req.Route, "request_id", req.RequestID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", v)
		}
	}()
	err = h(ctx, req, w)
	if err != nil && ctx.Err() == nil && kindName(err) == "internal" {
		rt.logger.Error("handler failed", "route", req.Route, "request_id", req.RequestID, "tenant", req.Principal.TenantID, "error", err)
	}
	return err
}
