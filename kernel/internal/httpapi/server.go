package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/edulure/edulure/kernel/internal/auditcheck"
	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/kernel/internal/config"
	"github.com/edulure/edulure/kernel/internal/events"
	"github.com/edulure/edulure/kernel/internal/jobs"
	"github.com/edulure/edulure/kernel/internal/privacy"
	"github.com/edulure/edulure/kernel/internal/problem"
	"github.com/edulure/edulure/kernel/internal/seal"
	"github.com/edulure/edulure/kernel/internal/supervisor"
	"github.com/edulure/edulure/kernel/internal/token"
	"github.com/edulure/edulure/sdk/blobstore"
	"github.com/edulure/edulure/sdk/telemetry"
)

// Deps are what the API needs from the rest of the kernel.
type Deps struct {
	Config    config.Config
	Logger    hclog.Logger
	Pool      *pgxpool.Pool
	Keyring   *token.Keyring
	Authz     *authz.Engine
	Catalogue *authz.Catalogue
	Sealer    *seal.Sealer
	Plugins   *supervisor.Supervisor
	Events    *events.Service
	Jobs      *jobs.Service
	Privacy   *privacy.Service // exports, erasures, offboarding
	// AuditCheck signs and verifies the audit chains' checkpoints; nil:
	// the checkpoint routes answer 503.
	AuditCheck *auditcheck.Service
	Registry   *prometheus.Registry // nil: a fresh one
	Tracing    *telemetry.Tracing   // nil: no tracing
}

// Server is the kernel's HTTP API.
type Server struct {
	Deps
	echo       *echo.Echo
	routes     []Route
	openapi    atomic.Pointer[openAPICache]
	roles      *roleCache
	revoked    *revocations
	ipLimit    *limiter
	accountLim *limiter
	metrics    *metrics
	now        func() time.Time
	mfaIssuer  string

	tracing     bool         // spans for requests, authentication and decisions
	tracer      trace.Tracer // a no-op one when not tracing
	metricsHTTP http.Handler // /metrics: the kernel's series and the plugins'
	bg          *background
}

// New builds the API and registers every kernel route.
func New(ctx context.Context, d Deps) (*Server, error) {
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Tracing == nil {
		d.Tracing = telemetry.Off()
	}
	s := &Server{
		Deps:       d,
		echo:       echo.New(),
		roles:      newRoleCache(d.Pool),
		revoked:    newRevocations(d.Pool, d.Config.AccessTokenTTL),
		ipLimit:    newLimiter(d.Config.AuthRatePerIP, time.Minute),
		accountLim: newLimiter(d.Config.AuthRatePerUser, time.Minute),
		now:        time.Now,
		mfaIssuer:  "Edulure",
		tracing:    d.Tracing.Enabled,
		tracer:     d.Tracing.Provider.Tracer(tracerName),
		bg:         newBackground(256),
	}
	s.metricsHTTP = promhttp.HandlerFor(metricsGatherer{s}, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
	var err error
	if s.metrics, err = newMetrics(d.Registry); err != nil {
		return nil, err
	}
	if err := d.Registry.Register(streamCollector{d.Plugins}); err != nil {
		if _, dup := err.(prometheus.AlreadyRegisteredError); !dup {
			return nil, err
		}
	}
	if err := s.loadTenantRoles(ctx); err != nil {
		return nil, err
	}
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = echo.ExtractIPDirect()
	if d.Config.TrustProxy {
		e.IPExtractor = echo.ExtractIPFromXFFHeader()
	}
	e.Pre(middleware.RemoveTrailingSlash())
	e.Use(s.requestID)
	if s.tracing { // off, not even the middleware: tracing then costs nothing
		e.Use(s.traceRequests)
	}
	e.Use(s.logRequests, s.recover)
	e.Use(s.secureHeaders, limitHeaders)
	if len(d.Config.CORSOrigins) > 0 {
		e.Use(middleware.CORSWithConfig(middleware.CORSConfig{
			AllowOrigins:  d.Config.CORSOrigins,
			AllowMethods:  []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
			AllowHeaders:  []string{"Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"},
			ExposeHeaders: []string{"X-Request-ID", "Retry-After"},
			MaxAge:        600,
		}))
	}
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit: strconv.FormatInt(d.Config.BodyLimit, 10) + "B", Skipper: signedBlobPath,
	}))
	e.Use(s.deadline)

	s.routes = s.kernelRoutes()
	for _, r := range s.routes {
		if err := s.register(r); err != nil {
			return nil, err
		}
	}
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut} {
		s.echo.Add(m, blobstore.SignedPath+"*", s.signedBlob)
	}
	// Every other /api/v1 path may be a plugin's: the proxy resolves it
	// against the plugins' route table, which changes as plugins load.
	s.echo.Any(pluginRoutes, s.pluginProxy)
	if _, err := s.openAPIDocument(); err != nil {
		return nil, fmt.Errorf("building OpenAPI document: %w", err)
	}
	return s, nil
}

func (s *Server) register(r Route) error {
	if (r.Access == TenantScoped || r.Access == Platform) && !s.Catalogue.Has(r.Permission) {
		return fmt.Errorf("route %s %s declares unknown permission %q", r.Method, r.Path, r.Permission)
	}
	var mw []echo.MiddlewareFunc
	if strings.HasPrefix(r.Path, "/api/v1/auth/") {
		mw = append(mw, noStore)
	}
	if r.AuthLimited {
		mw = append(mw, s.limitByIP)
	}
	if r.Access != Public {
		mw = append(mw, s.authenticate(r))
	}
	if r.takesNoBody() {
		mw = append(mw, noBody)
	}
	if r.Idempotent {
		mw = append(mw, s.idempotency)
	}
	mw = append(mw, checkParams)
	s.echo.Add(r.Method, r.Path, r.Handler, mw...)
	return nil
}

// Handler is the http.Handler of the API.
func (s *Server) Handler() http.Handler { return s.echo }

// Routes returns the route table.
func (s *Server) Routes() []Route { return s.routes }

// Run starts background work (change listener, revocation poller, pruning
// of expired Idempotency-Key records) until ctx ends.
func (s *Server) Run(ctx context.Context) {
	go s.listenChanges(ctx)
	go s.revoked.poll(ctx, s.Logger)
	go s.pruneLoop(ctx)
}

// Serve listens on addr until ctx ends, then drains in-flight requests.
func (s *Server) Serve(ctx context.Context, addr string) error {
	srv := &http.Server{
		Addr:              addr,
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.Config.RequestTimeout + 5*time.Second,
		WriteTimeout:      s.Config.RequestTimeout + 10*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    serverHeaderLimit, // limitHeaders answers from headerLimit on

	}
	srv.RegisterOnShutdown(s.Plugins.EndStreams) // open streams end now rather than hold the drain up
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("draining HTTP server: %w", err)
	}
	return nil
}

// writeProblem sends a problem document.
func writeProblem(c echo.Context, p *problem.Problem) error {
	if p.RequestID == "" {
		p.RequestID = c.Response().Header().Get(echo.HeaderXRequestID)
	}
	if p.Instance == "" {
		p.Instance = c.Request().URL.Path
	}
	if p.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(p.RetryAfter))
	}
	// c.JSON keeps a Content-Type that is already set.
	c.Response().Header().Set(echo.HeaderContentType, problem.ContentType)
	return c.JSON(p.Status, p)
}

func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var p *problem.Problem
	var he *echo.HTTPError
	switch {
	case errors.As(err, &he):
		detail := fmt.Sprint(he.Message)
		switch he.Code {
		case http.StatusNotFound:
			detail = "no route " + c.Request().Method + " " + c.Request().URL.Path
		case http.StatusMethodNotAllowed:
			detail = "method " + c.Request().Method + " is not allowed on " + c.Request().URL.Path
		case http.StatusRequestEntityTooLarge:
			detail = fmt.Sprintf("request body is larger than the limit of %d bytes", s.Config.BodyLimit)
		}
		p = problem.New(he.Code, "", detail)
	case errors.Is(err, context.DeadlineExceeded):
		p = problem.New(http.StatusServiceUnavailable, "timeout", fmt.Sprintf("the request did not finish within %s", s.Config.RequestTimeout))
		p.RetryAfter = 1
	default:
		p = problem.FromError(err)
	}
	if p.Status >= 500 {
		s.requestLogger(c).Error("request failed", "error", err, "status", p.Status)
	}
	if werr := writeProblem(c, p); werr != nil {
		s.requestLogger(c).Warn("writing problem response", "error", werr)
	}
}
