package sdk

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edulure/edulure/sdk/internal/bridge"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

func init() {
	bridge.Compile = func(p any) (*pluginv1.Manifest, error) {
		c, err := compileManifest(p.(Plugin).Manifest())
		if err != nil {
			return nil, err
		}
		return c.wire, nil
	}
	bridge.KindName = kindName
	bridge.Provision = func(ctx context.Context, p any, logger hclog.Logger, pool *pgxpool.Pool, host any, operator []byte, blobs pluginv1.HostClient) (bridge.Runtime, error) {
		pl := p.(Plugin)
		c, err := compileManifest(pl.Manifest())
		if err != nil {
			return nil, err
		}
		h, ok := host.(Host)
		if !ok && host != nil {
			return nil, fmt.Errorf("the host is a %T, not an sdk.Host", host)
		}
		rt, err := newRuntime(ctx, pl, c, logger, pool, h, blobs, operator, nil, nil, false)
		if err != nil {
			return nil, err
		}
		return bridged{rt: rt, plugin: pl}, nil
	}
}

// bridged is a runtime as sdk/plugintest drives it.
type bridged struct {
	rt     *runtime
	plugin Plugin
}

func (b bridged) HandleHTTP(ctx context.Context, in *pluginv1.HTTPRequest) *pluginv1.HTTPResponse {
	return b.rt.handleHTTP(ctx, in)
}
func (b bridged) HandleHTTPStream(ctx context.Context, in *pluginv1.HTTPRequest, send func(*pluginv1.HTTPResponsePart) error) error {
	return b.rt.handleHTTPStream(ctx, in, send)
}
func (b bridged) HandleEvents(ctx context.Context, in *pluginv1.HandleEventsRequest) *pluginv1.HandleEventsResponse {
	return b.rt.handleEvents(ctx, in)
}
func (b bridged) RunJob(ctx context.Context, in *pluginv1.RunJobRequest) *pluginv1.RunJobResponse {
	return b.rt.runJob(ctx, in)
}
func (b bridged) ExportPersonalData(ctx context.Context, in *pluginv1.PersonalDataExportRequest, send func(*pluginv1.PersonalDataExportChunk) error) error {
	return b.rt.exportPersonalData(ctx, in, send)
}
func (b bridged) ErasePersonalData(ctx context.Context, in *pluginv1.PersonalDataEraseRequest) (*pluginv1.PersonalDataEraseResponse, error) {
	return b.rt.erasePersonalData(ctx, in)
}
func (b bridged) EraseTenantData(ctx context.Context, in *pluginv1.ErasureTenantRequest) (*pluginv1.ErasureTenantResponse, error) {
	return b.rt.eraseTenantData(ctx, in)
}
func (b bridged) ApplyRetention(ctx context.Context, in *pluginv1.RetentionRequest) (*pluginv1.RetentionResult, error) {
	return b.rt.applyRetention(ctx, in)
}
func (b bridged) CheckRetention(ctx context.Context) error    { return b.rt.checkRetention(ctx) }
func (b bridged) CheckPersonalData(ctx context.Context) error { return b.rt.checkPersonalData(ctx) }
func (b bridged) Cleanup(ctx context.Context) error           { return b.rt.cleanup(ctx, b.plugin) }
func (b bridged) Env() any                                    { return b.rt.env }
func (b bridged) Storage(tenantID string) any {
	if tenantID == "" {
		return &Bucket{err: Errorf(ErrInvalid, "storage: an institution's storage needs its ID")}
	}
	return b.rt.bucket(&pluginv1.BlobScope{TenantId: tenantID})
}
