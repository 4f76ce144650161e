package sdk

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"

	"github.com/edulure/edulure/sdk/telemetry"
	"github.com/edulure/edulure/sdk/wire"
)

// Serve runs a plugin built by newPlugin until the kernel stops it. It is
// the whole of a plugin's main:
//
//	func main() { sdk.Serve(gamification.New) }
//
// Started by hand rather than by the kernel, it explains so and exits.
//
// Since: v1.0
func Serve[P Plugin](newPlugin func() P) {
	logger := hclog.New(&hclog.LoggerOptions{
		Output:     os.Stderr,
		JSONFormat: true, // the kernel's go-plugin client parses it into its own log
		Level:      hclog.Trace,
	})
	if len(os.Args) == 2 && os.Args[1] == "manifest" {
		os.Exit(printManifest(newPlugin()))
	}
	if os.Getenv(wire.Handshake.MagicCookieKey) != wire.Handshake.MagicCookieValue {
		fmt.Fprintf(os.Stderr, "This is an Edulure plugin. List it in plugins.hcl and the kernel will start it.\nRun %q to print its manifest.\n", os.Args[0]+" manifest")
		os.Exit(1)
	}
	// A plugin's live heap is small and each request allocates a little:
	// at Go's default GOGC of 100 the collector runs many times a second
	// under load. The kernel passes plugins no environment, so GOGC cannot
	// be set for them from outside; 400 is what the kernel uses too.
	debug.SetGCPercent(400)
	p := newPlugin()
	srv := newServer(p, logger, setUpTracing(logger, p))
	go exitWithParent(logger, os.Getppid(), 500*time.Millisecond)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  wire.Handshake,
		VersionedPlugins: wire.ServerPlugins(srv, srv.setBroker),
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           logger,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.cleanup(ctx); err != nil {
		logger.Error("cleanup", "error", err)
	}
}

// setUpTracing configures the plugin's tracer from the OTEL_* variables the
// kernel passes it (the kernel's own: see telemetry.PluginEnv). Misconfigured,
// the plugin serves untraced and says why.
func setUpTracing(logger hclog.Logger, p Plugin) *telemetry.Tracing {
	m := p.Manifest()
	t, err := telemetry.New(context.Background(), os.Getenv, telemetry.Service{Name: "edulure-plugin-" + m.Name, Version: m.Version})
	if err != nil {
		logger.Error("tracing is off: its OTEL_* settings are not usable", "error", err)
		return telemetry.Off()
	}
	return t
}

// printManifest writes the manifest as JSON (without handlers and SQL) so
// operators and tooling (make run) can see what a binary is. Schemas are
// printed as JSON, not as the bytes the protocol carries them in.
func printManifest(p Plugin) int {
	c, err := compileManifest(p.Manifest())
	if err != nil {
		fmt.Fprintln(os.Stderr, "invalid manifest:", err)
		return 1
	}
	out, err := manifestJSON(c.wire)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(string(out))
	return 0
}

// manifestJSON is the wire manifest as readable JSON: protojson's form with
// each *_json bytes field (base64 there) embedded as the JSON it holds, and
// migrations without their SQL.
func manifestJSON(m *pluginv1.Manifest) ([]byte, error) {
	m = proto.Clone(m).(*pluginv1.Manifest)
	for _, mg := range m.Migrations {
		mg.Sql = ""
	}
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	embedJSON(doc)
	return json.MarshalIndent(doc, "", "  ")
}

// embedJSON replaces the base64 of every "*_json" field with the JSON it
// encodes.
func embedJSON(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && strings.HasSuffix(k, "_json") {
				if b, err := base64.StdEncoding.DecodeString(s); err == nil && json.Valid(b) {
					x[k] = json.RawMessage(b)
					continue
				}
			}
			embedJSON(e)
		}
	case []any:
		for _, e := range x {
			embedJSON(e)
		}
	}
}

// exitWithParent ends the process when the kernel that started it is gone,
// even if it died by SIGKILL and could not stop its plugins: the process is
// then re-parented and os.Getppid changes.
func exitWithParent(logger hclog.Logger, parent int, every time.Duration) {
	for range time.Tick(every) {
		if os.Getppid() != parent {
			logger.Warn("the kernel process is gone; exiting", "parent", parent)
			os.Exit(3)
		}
	}
}
