package sdk

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/telemetry"
)

// server is the plugin side of the protocol: it serves the Plugin service
// for one Plugin and enforces the lifecycle order.
type server struct {
	pluginv1.UnimplementedPluginServer

	plugin  Plugin
	logger  hclog.Logger
	tracing *telemetry.Tracing // from the environment the kernel gave the process

	mu       sync.Mutex
	broker   *plugin.GRPCBroker
	compiled *compiled
	rt       *runtime // set once Configure succeeded
}

func newServer(p Plugin, logger hclog.Logger, tracing *telemetry.Tracing) *server {
	if tracing == nil {
		tracing = telemetry.Off()
	}
	return &server{plugin: p, logger: logger, tracing: tracing}
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
	if s.compiled == nil {
		c, err := compileManifest(s.plugin.Manifest())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "manifest: %v", err)
		}
		s.compiled = c
	}
	return s.compiled.wire, nil
}

// Configure: lifecycle step 4 (the kernel did step 3 in between).
func (s *server) Configure(ctx context.Context, req *pluginv1.ConfigureRequest) (*pluginv1.ConfigureResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.compiled == nil {
		return nil, status.Error(codes.FailedPrecondition, "Configure before GetManifest")
	}
	if s.rt != nil {
		return nil, status.Error(codes.FailedPrecondition, "the plugin is already configured")
	}
	var pool *pgxpool.Pool
	if req.DatabaseUrl != "" {
		cfg, err := pgxpool.ParseConfig(req.DatabaseUrl)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "database URL: %v", err)
		}
		if req.DatabaseMaxConns > 0 {
			cfg.MaxConns = req.DatabaseMaxConns
		}
		// Statements run under a handler's span become its children; the
		// rest cost a context lookup.
		cfg.ConnConfig.Tracer = telemetry.QueryTracer{}
		if pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
			return nil, status.Errorf(codes.Unavailable, "connecting to the database: %v", err)
		}
	}
	var host Host
	var blobs pluginv1.HostClient
	var wake func()
	if s.broker != nil && req.HostBrokerId != 0 {
		conn, err := s.broker.Dial(req.HostBrokerId)
		if err != nil {
			if pool != nil {
				pool.Close()
			}
			return nil, status.Errorf(codes.Unavailable, "dialling the kernel's host services: %v", err)
		}
		blobs = pluginv1.NewHostClient(conn)
		hc := &hostClient{c: blobs}
		host, wake = hc, newWaker(s.logger, hc.eventsPublished)
	}
	rt, err := newRuntime(ctx, s.plugin, s.compiled, s.logger, pool, host, blobs, req.OperatorConfigJson, wake, s.tracing.Provider, s.tracing.Enabled)
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		return nil, status.Errorf(codes.FailedPrecondition, "provisioning: %v", err)
	}
	s.rt = rt
	return &pluginv1.ConfigureResponse{}, nil
}

func (s *server) ready() (*runtime, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rt == nil {
		return nil, status.Error(codes.FailedPrecondition, "the plugin is not configured yet")
	}
	return s.rt, nil
}

// HandleHTTP: lifecycle step 5.
func (s *server) HandleHTTP(ctx context.Context, in *pluginv1.HTTPRequest) (*pluginv1.HTTPResponse, error) {
	rt, err := s.ready()
	if err != nil {
		return nil, err
	}
	if _, ok := rt.routes[in.Route]; !ok {
		return nil, status.Errorf(codes.NotFound, "no route %q in this plugin", in.Route)
	}
	return rt.handleHTTP(ctx, in), nil
}

// HandleHTTPStream: lifecycle step 5, for a streamed route.
func (s *server) HandleHTTPStream(in *pluginv1.HTTPRequest, out grpc.ServerStreamingServer[pluginv1.HTTPResponsePart]) error {
	rt, err := s.ready()
	if err != nil {
		return err
	}
	if _, ok := rt.streams[in.Route]; !ok {
		return status.Errorf(codes.NotFound, "no streamed route %q in this plugin", in.Route)
	}
	ctx := out.Context()
	if err := rt.handleHTTPStream(ctx, in, out.Send); err != nil {
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
		return status.Error(codes.Aborted, err.Error())
	}
	return nil
}

// HandleEvents: lifecycle step 5.
func (s *server) HandleEvents(ctx context.Context, in *pluginv1.HandleEventsRequest) (*pluginv1.HandleEventsResponse, error) {
	rt, err := s.ready()
	if err != nil {
		return nil, err
	}
	return rt.handleEvents(ctx, in), nil
}

// RunJob: lifecycle step 5.
func (s *server) RunJob(ctx context.Context, in *pluginv1.RunJobRequest) (*pluginv1.RunJobResponse, error) {
	rt, err := s.ready()
	if err != nil {
		return nil, err
	}
	return rt.runJob(ctx, in), nil
}

// ExportPersonalData: lifecycle step 5. Since: v1.2
func (s *server) ExportPersonalData(in *pluginv1.PersonalDataExportRequest, stream pluginv1.Plugin_ExportPersonalDataServer) error {
	rt, err := s.ready()
	if err != nil {
		return err
	}
	ctx, cancel := withDeadline(stream.Context(), in.DeadlineUnixMs)
	defer cancel()
	return personalStatus(rt.exportPersonalData(ctx, in, stream.Send))
}

// ErasePersonalData: lifecycle step 5. Since: v1.2
func (s *server) ErasePersonalData(ctx context.Context, in *pluginv1.PersonalDataEraseRequest) (*pluginv1.PersonalDataEraseResponse, error) {
	rt, err := s.ready()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, in.DeadlineUnixMs)
	defer cancel()
	out, err := rt.erasePersonalData(ctx, in)
	return out, personalStatus(err)
}

// EraseTenantData: lifecycle step 5. Since: v1.2
func (s *server) EraseTenantData(ctx context.Context, in *pluginv1.ErasureTenantRequest) (*pluginv1.ErasureTenantResponse, error) {
	rt, err := s.ready()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, in.DeadlineUnixMs)
	defer cancel()
	out, err := rt.eraseTenantData(ctx, in)
	return out, personalStatus(err)
}

// ApplyRetention: lifecycle step 5. Since: v1.3
func (s *server) ApplyRetention(ctx context.Context, in *pluginv1.RetentionRequest) (*pluginv1.RetentionResult, error) {
	rt, err := s.ready()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDeadline(ctx, in.DeadlineUnixMs)
	defer cancel()
	out, err := rt.applyRetention(ctx, in)
	return out, personalStatus(err)
}

// withDeadline bounds ctx by a request's deadline (0: none beyond ctx's).
func withDeadline(ctx context.Context, unixMs int64) (context.Context, context.CancelFunc) {
	if unixMs <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, time.UnixMilli(unixMs))
}

// personalStatus is the gRPC status of a personal data call's error: the
// caller's (a bad ID) or the plugin's, whose message the kernel keeps in
// the erasure's history for the operator.
func personalStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case isInvalid(err):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// GetMetrics answers the plugin's registry (Env.Metrics) for the kernel's
// /metrics. Since: v1.2
func (s *server) GetMetrics(context.Context, *pluginv1.GetMetricsRequest) (*pluginv1.GetMetricsResponse, error) {
	rt, err := s.ready()
	if err != nil {
		return nil, err
	}
	return rt.gatherMetrics()
}

// Health reports whether the plugin is configured and its database answers.
func (s *server) Health(ctx context.Context, _ *pluginv1.HealthRequest) (*pluginv1.HealthResponse, error) {
	rt, err := s.ready()
	if err != nil {
		return &pluginv1.HealthResponse{Status: "starting", Message: "not configured yet"}, nil
	}
	if rt.db != nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := rt.db.Pool.Ping(ctx); err != nil {
			return &pluginv1.HealthResponse{Status: "degraded", Message: "database: " + err.Error()}, nil
		}
	}
	return &pluginv1.HealthResponse{Status: "ok"}, nil
}

// cleanup: lifecycle step 6.
func (s *server) cleanup(ctx context.Context) error {
	s.mu.Lock()
	rt := s.rt
	s.mu.Unlock()
	if rt == nil {
		return nil
	}
	err := rt.cleanup(ctx, s.plugin)
	if terr := s.tracing.Shutdown(ctx); terr != nil { // export the spans still buffered
		s.logger.Warn("flushing traces", "error", terr)
	}
	return err
}

// cleanup runs the plugin's Cleanup, then closes the database pool.
func (rt *runtime) cleanup(ctx context.Context, p Plugin) error {
	var err error
	if c, ok := p.(CleanerUpper); ok {
		err = c.Cleanup(ctx)
	}
	if rt.db != nil {
		rt.db.Pool.Close()
	}
	return err
}
