package sdk

import (
	"context"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/telemetry"
)

// offboarded is a plugin without a database whose TenantEraser counts.
type offboarded struct{ erased []string }

func (*offboarded) Manifest() Manifest { return Manifest{Name: "offboarded", Version: "0.1.0"} }
func (o *offboarded) EraseTenant(_ context.Context, e *TenantErasure) error {
	if !e.DryRun {
		o.erased = append(o.erased, e.TenantID)
	}
	e.Deleted("files", 3)
	return nil
}

// exportStream collects what the server sends.
type exportStream struct {
	grpc.ServerStream
	ctx  context.Context
	sent []*pluginv1.PersonalDataExportChunk
}

func (s *exportStream) Context() context.Context { return s.ctx }
func (s *exportStream) Send(c *pluginv1.PersonalDataExportChunk) error {
	s.sent = append(s.sent, c)
	return nil
}

// The served plugin's side of the personal data calls: the lifecycle,
// the manifest's flag, the status codes, and a stream that ends with its
// manifest.
func TestServePersonalData(t *testing.T) {
	ctx := t.Context()
	p := &offboarded{}
	s := newServer(p, hclog.NewNullLogger(), telemetry.Off())
	tenant := "6f1c2a56-3a3e-4d53-9b1c-2f1f1b2d9c11"

	_, err := s.EraseTenantData(ctx, &pluginv1.ErasureTenantRequest{TenantId: tenant})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "before Configure")

	m, err := s.GetManifest(ctx, &pluginv1.GetManifestRequest{})
	require.NoError(t, err)
	require.True(t, m.PersonalData.Served, "a Go plugin always serves the calls")
	_, err = s.Configure(ctx, &pluginv1.ConfigureRequest{})
	require.NoError(t, err)

	out, err := s.EraseTenantData(ctx, &pluginv1.ErasureTenantRequest{TenantId: tenant, DryRun: true})
	require.NoError(t, err)
	require.Equal(t, "files", out.Counts[0].Table)
	require.EqualValues(t, 3, out.Counts[0].Deleted)
	require.Empty(t, p.erased, "a dry run")
	_, err = s.EraseTenantData(ctx, &pluginv1.ErasureTenantRequest{TenantId: tenant})
	require.NoError(t, err)
	require.Equal(t, []string{tenant}, p.erased)

	_, err = s.EraseTenantData(ctx, &pluginv1.ErasureTenantRequest{TenantId: "acme"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = s.ErasePersonalData(ctx, &pluginv1.PersonalDataEraseRequest{TenantId: tenant, UserId: "bob"})
	require.Equal(t, codes.InvalidArgument, status.Code(err))
	_, err = s.ErasePersonalData(ctx, &pluginv1.PersonalDataEraseRequest{TenantId: tenant, UserId: tenant, Pseudonym: tenant})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "the pseudonym is not the person")

	stream := &exportStream{ctx: ctx}
	require.NoError(t, s.ExportPersonalData(&pluginv1.PersonalDataExportRequest{TenantId: tenant, UserId: tenant}, stream))
	require.Len(t, stream.sent, 1)
	require.NotNil(t, stream.sent[0].Manifest, "nothing held: the manifest alone")
	require.Equal(t, codes.InvalidArgument, status.Code(s.ExportPersonalData(&pluginv1.PersonalDataExportRequest{TenantId: tenant}, &exportStream{ctx: ctx})))
}
