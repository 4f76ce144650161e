package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/storage"
)

// PersonalDataPlugin is a loaded plugin as the personal data lifecycle
// sees it: every one is asked for its part, enabled for the institution
// or not.
type PersonalDataPlugin struct {
	Name    string
	Version string
	// Data is the manifest's description of the personal data it holds.
	Data *pluginv1.PersonalDataManifest
	// Served: it serves ExportPersonalData, ErasePersonalData and
	// EraseTenantData.
	Served bool
	// Classes: it declares personal data (a person's export and erasure
	// ask it; an institution's erasure asks every plugin that serves).
	Classes bool
}

// PersonalDataPlugins lists the loaded plugins by name, running or not.
func (s *Supervisor) PersonalDataPlugins() []PersonalDataPlugin {
	var out []PersonalDataPlugin
	for _, l := range s.Loaded() {
		pd := l.Manifest.GetPersonalData()
		out = append(out, PersonalDataPlugin{
			Name: l.Name, Version: l.Manifest.Version, Data: pd,
			Served: pd.GetServed(), Classes: len(pd.GetClasses()) > 0,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ExportPersonalData streams plugin's export of one person to recv, chunk
// by chunk, manifest last. ctx bounds the call.
func (s *Supervisor) ExportPersonalData(ctx context.Context, plugin string, req *pluginv1.PersonalDataExportRequest, recv func(*pluginv1.PersonalDataExportChunk) error) (err error) {
	inst, err := s.running(plugin)
	if err != nil {
		return err
	}
	defer inst.inflight.Done()
	if dl, ok := ctx.Deadline(); ok {
		req.DeadlineUnixMs = dl.UnixMilli()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctx, end := s.traceCall(ctx, plugin, "ExportPersonalData")
	defer func() { end(err) }()
	stream, err := inst.rpc.ExportPersonalData(ctx, req)
	if err != nil {
		return fmt.Errorf("exporting from plugin %q: %w", plugin, err)
	}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("exporting from plugin %q: %w", plugin, err)
		}
		if err := recv(chunk); err != nil {
			return err
		}
	}
}

// ErasePersonalData asks plugin to erase one person's data in an
// institution. ctx bounds the call.
func (s *Supervisor) ErasePersonalData(ctx context.Context, plugin string, req *pluginv1.PersonalDataEraseRequest) (*pluginv1.PersonalDataEraseResponse, error) {
	inst, err := s.running(plugin)
	if err != nil {
		return nil, err
	}
	defer inst.inflight.Done()
	if dl, ok := ctx.Deadline(); ok {
		req.DeadlineUnixMs = dl.UnixMilli()
	}
	ctx, end := s.traceCall(ctx, plugin, "ErasePersonalData", attribute.Bool("edulure.dry_run", req.DryRun))
	resp, err := inst.rpc.ErasePersonalData(ctx, req)
	end(err)
	if err != nil {
		return nil, fmt.Errorf("erasing in plugin %q: %w", plugin, err)
	}
	return resp, nil
}

// EraseTenantData asks plugin to erase everything it holds for an
// institution. ctx bounds the call.
func (s *Supervisor) EraseTenantData(ctx context.Context, plugin string, req *pluginv1.ErasureTenantRequest) (*pluginv1.ErasureTenantResponse, error) {
	inst, err := s.running(plugin)
	if err != nil {
		return nil, err
	}
	defer inst.inflight.Done()
	if dl, ok := ctx.Deadline(); ok {
		req.DeadlineUnixMs = dl.UnixMilli()
	}
	ctx, end := s.traceCall(ctx, plugin, "EraseTenantData", attribute.Bool("edulure.dry_run", req.DryRun))
	resp, err := inst.rpc.EraseTenantData(ctx, req)
	end(err)
	if err != nil {
		return nil, fmt.Errorf("erasing the institution in plugin %q: %w", plugin, err)
	}
	return resp, nil
}

// StorageSpec is plugin's storage (its schema and roles), without its
// password: the kernel reads an institution's rows as the schema's owner
// when it offboards the institution.
func (s *Supervisor) StorageSpec(plugin string) storage.Spec {
	return storage.Spec{Plugin: plugin, RolePrefix: s.opts.RolePrefix}
}

// reviewPersonalData checks, at load, the plugin's description of its
// personal data against its schema (storage.ReviewPersonalData, the check
// sdk/plugintest fails a plugin's tests with): a class naming a table or
// column that does not exist refuses the plugin, since its export and
// erasure could not run; columns that look personal and that nothing
// describes are warnings, shown in the plugin's status (GET
// /api/v1/plugins) and logged, since the heuristic can be wrong.
func (s *Supervisor) reviewPersonalData(ctx context.Context, m *Manifest, spec storage.Spec) ([]string, error) {
	cat, err := storage.ReadCatalog(ctx, s.pool, spec.Schema())
	if err != nil {
		return nil, err
	}
	errs, uncovered := storage.ReviewPersonalData(cat, m.GetPersonalData())
	if len(errs) > 0 {
		return nil, refuse("personal data: %w", errors.Join(errs...))
	}
	var warnings []string
	for _, u := range uncovered {
		warnings = append(warnings, fmt.Sprintf("personal data: table %s, column %s looks personal (%s) but no data class describes it: its values are neither exported nor erased", u.Table, u.Column, u.Reason))
	}
	return warnings, nil
}

// checkPersonalDataServed refuses a plugin whose manifest says it serves
// the personal data calls (personal_data.served) when it does not: each is
// called with an empty institution, which a plugin that serves it refuses
// as invalid, and one that does not answers UNIMPLEMENTED.
func checkPersonalDataServed(ctx context.Context, inst *instance) error {
	if !inst.manifest.GetPersonalData().GetServed() {
		return nil
	}
	probe := func(call string, err error) error {
		switch status.Code(err) {
		case codes.Unimplemented:
			return refuse("personal data: the manifest says the plugin serves ExportPersonalData, ErasePersonalData and EraseTenantData (personal_data.served), but it does not serve %s", call)
		case codes.InvalidArgument, codes.OK:
			return nil
		}
		return fmt.Errorf("checking that the plugin serves %s: %w", call, err)
	}
	_, err := inst.rpc.ErasePersonalData(ctx, &pluginv1.PersonalDataEraseRequest{DryRun: true})
	if err := probe("ErasePersonalData", err); err != nil {
		return err
	}
	_, err = inst.rpc.EraseTenantData(ctx, &pluginv1.ErasureTenantRequest{DryRun: true})
	if err := probe("EraseTenantData", err); err != nil {
		return err
	}
	stream, err := inst.rpc.ExportPersonalData(ctx, &pluginv1.PersonalDataExportRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	return probe("ExportPersonalData", err)
}
