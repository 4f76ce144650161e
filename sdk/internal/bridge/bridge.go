// Package bridge hands sdk/plugintest the SDK's serving code without
// showing it to plugin authors: the package sdk fills these in at init, and
// plugintest drives a plugin through them exactly as sdk.Serve does, with
// the protocol's messages.
package bridge

import (
	"context"

	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5/pgxpool"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// Runtime is a provisioned plugin.
type Runtime interface {
	HandleHTTP(ctx context.Context, in *pluginv1.HTTPRequest) *pluginv1.HTTPResponse
	// HandleHTTPStream serves a streamed route, giving each part to send
	// (which may keep the part's body only until it returns). A non-nil
	// error after the first part means the answer was cut short.
	HandleHTTPStream(ctx context.Context, in *pluginv1.HTTPRequest, send func(*pluginv1.HTTPResponsePart) error) error
	HandleEvents(ctx context.Context, in *pluginv1.HandleEventsRequest) *pluginv1.HandleEventsResponse
	RunJob(ctx context.Context, in *pluginv1.RunJobRequest) *pluginv1.RunJobResponse
	// ExportPersonalData, ErasePersonalData and EraseTenantData serve the
	// personal data calls as the served plugin does (errors are plain, not
	// gRPC statuses).
	ExportPersonalData(ctx context.Context, in *pluginv1.PersonalDataExportRequest, send func(*pluginv1.PersonalDataExportChunk) error) error
	ErasePersonalData(ctx context.Context, in *pluginv1.PersonalDataEraseRequest) (*pluginv1.PersonalDataEraseResponse, error)
	EraseTenantData(ctx context.Context, in *pluginv1.ErasureTenantRequest) (*pluginv1.ErasureTenantResponse, error)
	// CheckPersonalData plans the data classes against the plugin's schema
	// and reports what keeps the SDK's generic SQL from running on them.
	CheckPersonalData(ctx context.Context) error
	// ApplyRetention serves a retention request as the served plugin does
	// (errors plain). Since: v1.3
	ApplyRetention(ctx context.Context, in *pluginv1.RetentionRequest) (*pluginv1.RetentionResult, error)
	// CheckRetention plans the retention classes that rely on the generic
	// SQL against the plugin's schema. Since: v1.3
	CheckRetention(ctx context.Context) error
	// Cleanup runs the plugin's Cleanup and closes its database pool.
	Cleanup(ctx context.Context) error
	// Env is the *sdk.Env the plugin was provisioned with.
	Env() any
	// Storage is the *sdk.Bucket of an institution, as sdk.Storage gives it.
	Storage(tenantID string) any
}

var (
	// Compile turns an sdk.Plugin's manifest into its wire form, as
	// GetManifest does.
	Compile func(plugin any) (*pluginv1.Manifest, error)
	// Provision provisions an sdk.Plugin as Configure does: a DB on pool,
	// host (an sdk.Host), the operator's configuration, the Host client
	// its object storage calls (blobs; nil: none), and the plugin's
	// Provision.
	Provision func(ctx context.Context, plugin any, logger hclog.Logger, pool *pgxpool.Pool, host any, operator []byte, blobs pluginv1.HostClient) (Runtime, error)
	// KindName is the wire name of the sdk sentinel an error wraps
	// ("not_found"), or "internal".
	KindName func(err error) string
)
