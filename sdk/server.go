package sdk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// server is the plugin side of the protocol: it serves the Plugin service
// for one Plugin and enforces the lifecycle order.
type server struct {
	pluginv1.UnimplementedPluginServer

	plugin Plugin
	logger hclog.Logger

	mu       sync.Mutex
	broker   *plugin.GRPCBroker
	manifest *pluginv1.Manifest
	handlers *handlers
	env      *Env // set once Configure succeeded
}

func newServer(p Plugin, logger hclog.Logger) *server {
	return &server{plugin: p, logger: logger}
}

func (s *server) setBroker(b *plugin.GRPCBroker) {
	s.mu.Lock()
	s.broker = b
	s.mu.Unlock()
}

// GetManifest: lifecycle step 2.
func (s *server) GetManifest(context.Context, *pluginv1.GetManifestRequest) (*pluginv1.Manifest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.manifest == nil {
		m, h, err := encodeManifest(s.plugin.Manifest())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "manifest: %v", err)
		}
		s.manifest, s.handlers = m, h
	}
	return s.manifest, nil
}

// Configure: lifecycle step 4 (the kernel did step 3 in between).
func (s *server) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) (*pluginv1.ConfigureResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.manifest == nil {
		return nil, status.Error(codes.FailedPrecondition, "Configure before GetManifest")
	}
	if s.env != nil {
		return nil, status.Error(codes.FailedPrecondition, "the plugin is already configured")
	}
	env := &Env{Logger: s.logger, OperatorConfig: orEmptyObject(req.OperatorConfigJson)}
	if req.DatabaseUrl != "" {
		cfg, err := pgxpool.ParseConfig(req.DatabaseUrl)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "database URL: %v", err)
		}
		if req.DatabaseMaxConns > 0 {
			cfg.MaxConns = req.DatabaseMaxConns
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "connecting to the database: %v", err)
		}
		if env.DB, err = NewDB(pool, s.plugin.Manifest()); err != nil {
			pool.Close()
			return nil, status.Errorf(codes.InvalidArgument, "manifest: %v", err)
		}
	}
	if s.broker != nil && req.HostBrokerId != 0 {
		conn, err := s.broker.Dial(req.HostBrokerId)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "dialling the kernel's host services: %v", err)
		}
		host := &hostClient{c: pluginv1.NewHostClient(conn)}
		env.Host = host
		if env.DB != nil {
			env.DB.events.wake = newWaker(s.logger, host.eventsPublished)
		}
	} else {
		env.Host = HostFuncs{}
	}
	if err := s.plugin.Provision(ctx, env); err != nil {
		if env.DB != nil {
			env.DB.Pool.Close()
		}
		return nil, status.Errorf(codes.FailedPrecondition, "provisioning: %v", err)
	}
	s.env = env
	return &pluginv1.ConfigureResponse{}, nil
}

func (s *server) ready() (*Env, *handlers, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.env == nil {
		return nil, nil, status.Error(codes.FailedPrecondition, "the plugin is not configured yet")
	}
	return s.env, s.handlers, nil
}

// HandleEvents: lifecycle step 5.
func (s *server) HandleEvents(ctx context.Context, in *pluginv1.HandleEventsRequest) (*pluginv1.HandleEventsResponse, error) {
	env, h, err := s.ready()
	if err != nil {
		return nil, err
	}
	return DispatchEvents(ctx, s.logger, h.events, in, env.DB), nil
}

// RunJob: lifecycle step 5.
func (s *server) RunJob(ctx context.Context, in *pluginv1.RunJobRequest) (*pluginv1.RunJobResponse, error) {
	env, h, err := s.ready()
	if err != nil {
		return nil, err
	}
	return DispatchJob(ctx, s.logger, h.jobs, in, env.DB), nil
}

// HandleHTTP: lifecycle step 5.
func (s *server) HandleHTTP(ctx context.Context, in *pluginv1.HTTPRequest) (*pluginv1.HTTPResponse, error) {
	env, h, err := s.ready()
	if err != nil {
		return nil, err
	}
	routes := h.routes
	h2, ok := routes[in.Route]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no route %q in this plugin", in.Route)
	}
	return Dispatch(ctx, s.logger, h2, in, env.DB), nil
}

// Dispatch runs one forwarded request through h exactly as a served plugin
// does: it decodes in (principal, query, headers, tenant configuration),
// calls h with db behind Request.Tx, turns a panic into a logged internal
// error, and encodes the answer or the error for the kernel. sdk/plugintest
// calls it so that a plugin's tests take the production code path.
//
// Since: v1.0
func Dispatch(ctx context.Context, logger hclog.Logger, h Handler, in *pluginv1.HTTPRequest, db *DB) *pluginv1.HTTPResponse {
	req := decodeRequest(in, db)
	resp, err := callHandler(ctx, logger, h, req)
	return encodeResponse(resp, err)
}

// Health reports whether the plugin is configured and its database answers.
func (s *server) Health(ctx context.Context, _ *pluginv1.HealthRequest) (*pluginv1.HealthResponse, error) {
	env, _, err := s.ready()
	if err != nil {
		return &pluginv1.HealthResponse{Status: "starting", Message: "not configured yet"}, nil
	}
	if env.DB != nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := env.DB.Pool.Ping(ctx); err != nil {
			return &pluginv1.HealthResponse{Status: "degraded", Message: "database: " + err.Error()}, nil
		}
	}
	return &pluginv1.HealthResponse{Status: "ok"}, nil
}

// cleanup: lifecycle step 6.
func (s *server) cleanup(ctx context.Context) error {
	s.mu.Lock()
	env := s.env
	s.mu.Unlock()
	if env == nil {
		return nil
	}
	err := s.plugin.Cleanup(ctx)
	if env.DB != nil {
		env.DB.Pool.Close()
	}
	return err
}

// callHandler runs a handler, turning a panic into an internal error so one
// bad request cannot take the plugin down.
func callHandler(ctx context.Context, logger hclog.Logger, h Handler, req *Request) (resp *Response, err error) {
	defer func() {
		if v := recover(); v != nil {
			logger.Error("handler panicked", "route", req.Route, "request_id", req.RequestID, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			resp, err = nil, fmt.Errorf("handler panicked: %v", v)
		}
	}()
	resp, err = h.ServeAPI(ctx, req)
	if err == nil && resp == nil {
		err = errors.New("handler returned neither a response nor an error")
	}
	if err != nil && KindName(err) == "internal" {
		logger.Error("handler failed", "route", req.Route, "request_id", req.RequestID, "tenant", req.Principal.TenantID, "error", err)
	}
	return resp, err
}

func decodeRequest(in *pluginv1.HTTPRequest, db *DB) *Request {
	req := &Request{
		Route: in.Route, Method: in.Method, Path: in.Path,
		Params: in.PathParams, Query: url.Values{}, Header: http.Header{},
		Body: in.Body, RequestID: in.RequestId, Config: orEmptyObject(in.TenantConfigJson),
		db: db,
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
	req.Principal = decodePrincipal(in.Principal)
	return req
}

func decodePrincipal(p *pluginv1.Principal) Principal {
	if p == nil {
		return Principal{Kind: "anonymous"}
	}
	return Principal{
		Kind: p.Kind, UserID: p.UserId, APIKeyID: p.ApiKeyId, TenantID: p.TenantId,
		Roles: p.Roles, Permissions: p.Permissions, Operator: p.Operator,
	}
}

func encodePrincipal(p Principal) *pluginv1.Principal {
	return &pluginv1.Principal{
		Kind: p.Kind, UserId: p.UserID, ApiKeyId: p.APIKeyID, TenantId: p.TenantID,
		Roles: p.Roles, Permissions: p.Permissions, Operator: p.Operator,
	}
}

func encodeResponse(resp *Response, err error) *pluginv1.HTTPResponse {
	if err != nil {
		return &pluginv1.HTTPResponse{Error: EncodeError(err)}
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

// EncodeError is the wire form of a handler's error. Details of errors that
// are not sdk errors stay in the plugin's log, not in the client's answer.
//
// Since: v1.0
func EncodeError(err error) *pluginv1.Error {
	out := &pluginv1.Error{Kind: KindName(err)}
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

// DecodeError turns a wire error back into an *Error wrapping its sentinel,
// or an internal error.
//
// Since: v1.0
func DecodeError(e *pluginv1.Error) error {
	kind := KindByName(e.Kind)
	if kind == nil {
		return &internalError{detail: e.Detail}
	}
	out := &Error{Kind: kind, Code: e.Code, Detail: e.Detail, RetryAfterSeconds: int(e.RetryAfterSeconds)}
	for _, f := range e.Fields {
		out.Fields = append(out.Fields, FieldError{Field: f.Field, Message: f.Message})
	}
	return out
}

type internalError struct{ detail string }

func (e *internalError) Error() string { return "plugin internal error: " + e.detail }

func orEmptyObject(b []byte) []byte {
	if len(b) == 0 {
		return []byte("{}")
	}
	return b
}
