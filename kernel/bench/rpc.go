package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/kernel/internal/supervisor"
	"github.com/edulure/edulure/policies"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// rpcRow measures one gRPC round trip from the kernel's supervisor to a
// plugin process (the forward of a no-op route: gRPC over AutoMTLS, the
// concurrency limit, the deadline) against a raw round trip over a Unix
// socket between the same two processes, carrying the same bytes. This
// process plays the kernel: it runs the kernel's supervisor in-process.
func (e *env) rpcRow(ctx context.Context) (Row, error) {
	sock := filepath.Join(e.dir, "echo.sock")
	entry := pluginEntry{name: "rpcecho", bin: e.plugins["scale"], config: fmt.Sprintf("{ echo_socket = %q }", sock)}
	var b []byte
	b = fmt.Appendf(b, "plugin %q {\n  path = %q\n  version = \"1.0.0\"\n  sha256 = %q\n  enabled_by_default = true\n  config = %s\n}\n", entry.name, entry.bin.path, entry.bin.sum, entry.config)
	file := filepath.Join(e.dir, "rpc-plugins.hcl")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return Row{}, err
	}
	cat, err := authz.NewCatalogue("kernel", authz.KernelPermissions)
	if err != nil {
		return Row{}, err
	}
	engine, err := authz.NewEngine(ctx, policies.FS, cat.Defaults())
	if err != nil {
		return Row{}, err
	}
	sup := supervisor.New(supervisor.Deps{Logger: hclog.NewNullLogger(), Pool: e.pool, Authz: engine, Catalogue: cat}, supervisor.Options{
		ConfigPath: file, DatabaseURL: e.dbURL, RolePrefix: "benchrpc_", Secret: []byte(e.secret), KernelVersion: "bench",
	})
	defer sup.Close()
	if err := sup.Load(ctx); err != nil {
		return Row{}, err
	}
	t, _, found := sup.Lookup("GET", "/api/v1/rpcecho/noop")
	if found != supervisor.Found {
		return Row{}, fmt.Errorf("the rpcecho plugin's route is not registered")
	}
	req := &pluginv1.HTTPRequest{Route: t.Route.Key, Method: "GET", Path: "/api/v1/rpcecho/noop", RequestId: "0192f000-0000-7000-8000-000000000000",
		Principal: &pluginv1.Principal{Kind: "user", UserId: "0192f000-0000-7000-8000-000000000001", TenantId: e.tenantID, Roles: []string{"learner"}, Permissions: []string{"rpcecho.item.read"}}}
	crossing := func() error {
		resp, err := sup.Forward(ctx, t, req)
		if err != nil {
			return err
		}
		if resp.Status != 204 {
			return fmt.Errorf("status %d", resp.Status)
		}
		return nil
	}
	// The same bytes, raw: the request out, the answer's size back.
	payload, err := proto.Marshal(req)
	if err != nil {
		return Row{}, err
	}
	var conn net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; {
		if conn, err = net.Dial("unix", sock); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return Row{}, fmt.Errorf("dialing the plugin's echo socket: %w", err)
	}
	defer conn.Close()
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	msg = append(msg, payload...)
	in := make([]byte, len(msg))
	raw := func() error {
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		_, err := io.ReadFull(conn, in)
		return err
	}
	n := 3000
	if e.opts.Smoke {
		n = 200
	}
	// Interleave rounds, keep each one's median round.
	var gs, rs []float64
	for range 5 {
		g, err := perOp(n, crossing)
		if err != nil {
			return Row{}, err
		}
		r, err := perOp(n, raw)
		if err != nil {
			return Row{}, err
		}
		gs, rs = append(gs, g), append(rs, r)
	}
	g, r := median(gs), median(rs)
	e.printf("  rpc.crossing: gRPC %.1f µs, raw Unix socket %.1f µs (%d payload bytes)", g, r, len(payload))
	return row("rpc.crossing", g, "µs", fmt.Sprintf("raw Unix-socket echo round trip between the same processes (%d bytes)", len(payload)), r), nil
}

// perOp is the mean time of fn in µs over n calls, after a warm-up.
func perOp(n int, fn func() error) (float64, error) {
	for range n / 10 {
		if err := fn(); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	for range n {
		if err := fn(); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(start).Microseconds()) / float64(n), nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
