package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/sdk"
)

// The baseline server is this same program re-executed as a process of its
// own (like the kernel), so that it and the kernel are loaded the same way
// from the same load generator. It answers with plain Echo handlers: no
// authentication, no tenant, no policy, no plugin.

// baselineServer is a running baseline process.
type baselineServer struct {
	url string
	p   *process
}

// startBaseline re-executes this program as the baseline server. permsJSON
// is the kernel's answer to GET /api/v1/tenant/permissions, which the
// baseline decodes once and encodes on every request, as the kernel does.
func (e *env) startBaseline(permsJSON []byte, extra ...string) (*baselineServer, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	body := filepath.Join(e.dir, "permissions.json")
	if err := os.WriteFile(body, permsJSON, 0o600); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{"serve-baseline", "-addr", addr, "-permissions", body}, extra...)...)
	p, err := startProcess(filepath.Join(e.dir, "baseline.log"), cmd)
	if err != nil {
		return nil, err
	}
	b := &baselineServer{url: "http://" + addr, p: p}
	e.named[p.pid()] = "baseline"
	for deadline := time.Now().Add(30 * time.Second); ; {
		if res, err := http.Get(b.url + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return b, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("the baseline server exited; its log is %s", p.logf.Name())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("the baseline server did not start; its log is %s", p.logf.Name())
		}
	}
}

// serveBaseline is the baseline server's main.
func serveBaseline(args []string) error {
	fs := flag.NewFlagSet("serve-baseline", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	perms := fs.String("permissions", "", "JSON answer of GET /api/v1/tenant/permissions")
	dbURL := fs.String("db", "", "database URL of the courses plugin's role, for the dashboard read")
	webhookDB := fs.String("webhook-db", "", "database URL of the commerce plugin's role, for the webhook intake")
	webhookSecret := fs.String("webhook-secret", "", "the Stripe signing secret the webhook intake checks")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raw, err := os.ReadFile(*perms)
	if err != nil {
		return err
	}
	var page sdk.Page[authz.Permission]
	if err := json.Unmarshal(raw, &page); err != nil {
		return err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/healthz", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	e.GET("/api/v1/tenant/permissions", func(c echo.Context) error { return c.JSON(http.StatusOK, page) })
	if *dbURL != "" {
		h, err := newDashboardHandler(context.Background(), *dbURL)
		if err != nil {
			return err
		}
		e.GET("/api/v1/enrolments", h.serve)
	}
	if *webhookDB != "" {
		h, err := newWebhookHandler(context.Background(), *webhookDB, *webhookSecret)
		if err != nil {
			return err
		}
		e.POST("/api/v1/webhooks/stripe/:endpoint", h.serve)
	}
	srv := &http.Server{Addr: *addr, Handler: e, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	return srv.ListenAndServe()
}
