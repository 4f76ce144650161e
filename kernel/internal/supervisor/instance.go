package supervisor

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/edulure/edulure/sdk/blobstore"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/storage"
	"github.com/edulure/edulure/sdk/wire"
)

// instance is one running process of a plugin.
type instance struct {
	cfg      PluginConfig
	manifest *Manifest
	client   *plugin.Client
	rpc      *wire.Client
	logger   hclog.Logger
	started  time.Time
	pid      int
	// warnings are what the kernel found questionable at load without
	// refusing the plugin (reviewPersonalData).
	warnings []string

	sem      chan struct{} // concurrency limit
	mu       sync.Mutex    // orders acquire against stop's drain
	draining bool
	inflight sync.WaitGroup
	stopOnce sync.Once

	// streams ends with stop: the instance's open streams end then rather
	// than hold its drain up for as long as they last.
	streams     context.Context
	stopStreams context.CancelFunc
}

// PluginPATH is the PATH a plugin process gets: where an interpreter named
// by a script's "#!/usr/bin/env node" line is looked for.
const PluginPATH = "/usr/local/bin:/usr/bin:/bin"

// refusal is an error that restarting will not cure: a checksum mismatch,
// a bad manifest, a failed migration. The plugin is not restarted.
type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refuse(format string, args ...any) error { return &refusal{fmt.Errorf(format, args...)} }

// start runs the lifecycle of sdk.Plugin up to serving: start the process
// (checksum verified, AutoMTLS), negotiate the protocol, read and validate
// the manifest, provision storage, configure.
func (s *Supervisor) start(ctx context.Context, cfg PluginConfig, others map[string][]*Route) (*instance, error) {
	logger := s.logger.Named(cfg.Name)
	if _, err := os.Stat(cfg.Path); err != nil {
		return nil, refuse("plugin binary %s: %w", cfg.Path, err)
	}
	cmd := exec.Command(cfg.Path)
	// Plugins get none of the kernel's environment: no DATABASE_URL, no
	// secret key. go-plugin adds its handshake variables, and would add the
	// kernel's whole environment too without SkipHostEnv.
	cmd.Env = []string{"PATH=" + PluginPATH, "EDULURE_PLUGIN_NAME=" + cfg.Name}
	if s.opts.PluginEnv != nil {
		// Tracing's OTEL_* settings, so the plugin exports where the kernel does.
		cmd.Env = append(cmd.Env, s.opts.PluginEnv(cfg.Name)...)
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		VersionedPlugins: wire.ClientPlugins(),
		Cmd:              cmd,
		SecureConfig:     &plugin.SecureConfig{Checksum: cfg.Checksum, Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		Logger:           silencedStderr{Logger: logger, binary: filepath.Base(cfg.Path)}, // see pluginlog.go
		Stderr:           newStderrLog(logger.Named(filepath.Base(cfg.Path))),
		StartTimeout:     s.opts.StartTimeout,
		GRPCDialOptions:  []grpc.DialOption{grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64 << 20))},
	})
	inst := &instance{cfg: cfg, client: client, logger: logger, started: time.Now(), sem: make(chan struct{}, cfg.Limits.MaxConcurrentRequests)}
	inst.streams, inst.stopStreams = context.WithCancel(context.Background())
	fail := func(err error) (*instance, error) {
		inst.stopStreams()
		client.Kill()
		return nil, err
	}
	rpcClient, err := client.Client()
	if err != nil {
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			return fail(refuse("plugin binary %s does not match the sha256 in plugins.hcl (%s): refusing to start it", cfg.Path, cfg.SHA256))
		}
		return fail(fmt.Errorf("starting plugin process: %w", err))
	}
	if rc := client.ReattachConfig(); rc != nil {
		inst.pid = rc.Pid
	}
	raw, err := rpcClient.Dispense(wire.PluginKey)
	if err != nil {
		return fail(fmt.Errorf("connecting to plugin: %w", err))
	}
	inst.rpc = raw.(*wire.Client)
	protocol := client.NegotiatedVersion()

	callCtx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	pm, err := inst.rpc.GetManifest(callCtx, &pluginv1.GetManifestRequest{ProtocolVersion: uint32(protocol), KernelVersion: s.opts.KernelVersion})
	if err != nil {
		return fail(refuse("reading manifest: %w", err))
	}
	m, err := validateManifest(pm, cfg, protocol, others, s.knownPermission(cfg.Name))
	if err != nil {
		return fail(refuse("invalid manifest: %w", err))
	}
	inst.manifest = m

	spec := storage.Spec{
		Plugin: cfg.Name, RolePrefix: s.opts.RolePrefix, Password: s.rolePassword(cfg.Name),
		Migrations: m.Migrations,
	}
	applied, err := storage.Provision(callCtx, s.pool, spec)
	if err != nil {
		return fail(refuse("provisioning storage: %w", err))
	}
	if len(applied) > 0 {
		logger.Info("applied plugin migrations", "versions", applied)
	}
	if inst.warnings, err = s.reviewPersonalData(callCtx, m, spec); err != nil {
		return fail(err)
	}
	for _, w := range inst.warnings {
		logger.Warn(w)
	}
	dsn, err := storage.RuntimeURL(s.opts.DatabaseURL, spec)
	if err != nil {
		return fail(refuse("%w", err))
	}

	hostID := inst.rpc.Broker.NextId()
	host := &hostServer{s: s, plugin: cfg.Name, Service: blobstore.Service{Store: s.blobs, Plugin: cfg.Name, Capabilities: m.Capabilities, Logger: logger}}
	go inst.rpc.Broker.AcceptAndServe(hostID, func(opts []grpc.ServerOption) *grpc.Server {
		if s.tracing {
			opts = append(opts, grpc.UnaryInterceptor(s.traceHost(cfg.Name)))
		}
		srv := grpc.NewServer(opts...)
		pluginv1.RegisterHostServer(srv, host)
		return srv
	})
	if _, err := inst.rpc.Configure(callCtx, &pluginv1.ConfigureRequest{
		ProtocolVersion: uint32(protocol), DatabaseUrl: dsn, DatabaseMaxConns: int32(cfg.Limits.DBConnections),
		OperatorConfigJson: cfg.Config, HostBrokerId: hostID,
	}); err != nil {
		return fail(fmt.Errorf("configuring plugin: %w", err))
	}
	if err := checkPersonalDataServed(callCtx, inst); err != nil {
		return fail(err)
	}
	logger.Info("plugin started", "version", m.Version, "protocol", protocol, "pid", inst.pid, "routes", len(m.Routes))
	return inst, nil
}

// rolePassword derives the plugin role's password from the kernel's secret,
// so every replica sets and hands out the same one.
func (s *Supervisor) rolePassword(name string) string {
	return hex.EncodeToString(s.derive("edulure plugin role password\x00" + s.opts.RolePrefix + name))
}

// derive is a key for one purpose, derived from the kernel's secret: the
// same on every replica, and telling nothing of the secret or of the keys
// of other purposes.
func (s *Supervisor) derive(purpose string) []byte {
	mac := hmac.New(sha256.New, s.opts.Secret)
	mac.Write([]byte(purpose))
	return mac.Sum(nil)
}

// exited reports whether the process has ended.
func (i *instance) exited() bool { return i.client.Exited() }

// acquire counts a request in flight, unless the instance is draining: then
// the caller must use the slot's new instance.
func (i *instance) acquire() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.draining {
		return false
	}
	i.inflight.Add(1)
	return true
}

// stop ends the instance's streams and waits up to grace for in-flight
// requests, then ends the process (go-plugin asks it to shut down, and
// kills it if it does not). Requests not yet acquired when it starts go to
// the slot's next instance.
func (i *instance) stop(grace time.Duration) {
	i.stopOnce.Do(func() {
		i.mu.Lock()
		i.draining = true
		i.mu.Unlock()
		i.stopStreams() // clients reconnect to the next instance (SSE: with Last-Event-ID)
		done := make(chan struct{})
		go func() { i.inflight.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(grace):
			i.logger.Warn("stopping plugin with requests still in flight", "grace", grace)
		}
		i.client.Kill()
	})
}
