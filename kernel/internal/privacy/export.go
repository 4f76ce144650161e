package privacy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/edulure/edulure/kernel/internal/audit"
	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/blobstore"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// Export states.
const (
	ExportQueued  = "queued"
	ExportRunning = "running"
	ExportReady   = "ready"
	ExportFailed  = "failed"
	ExportExpired = "expired"
)

// Export is a data export: a person's in an institution, or (for an
// offboarding) an institution's.
type Export struct {
	ID       uuid.UUID `json:"id"`
	TenantID uuid.UUID `json:"tenant_id"`
	// UserID: whose data; absent for an institution's export.
	UserID      *uuid.UUID   `json:"user_id,omitempty"`
	RequestedBy string       `json:"requested_by"`
	State       string       `json:"state"`
	Attempts    int          `json:"attempts"`
	LastError   *string      `json:"last_error,omitempty"`
	Parts       []ExportPart `json:"parts"`
	Bytes       *int64       `json:"bytes,omitempty"`
	SHA256      *string      `json:"sha256,omitempty"`
	CreatedAt   time.Time    `json:"created_at"`
	FinishedAt  *time.Time   `json:"finished_at,omitempty"`
	// ExpiresAt: the archive is deleted then.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`

	objectKey *string
}

// DownloadLink is a short-lived signed URL of an export's archive.
type DownloadLink struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
	Bytes     int64     `json:"bytes"`
	SHA256    string    `json:"sha256"`
}

const exportColumns = `id, tenant_id, user_id, requested_by, state, attempts, last_error, parts, bytes, sha256, created_at, finished_at, expires_at, object_key`

func scanExport(row pgx.Row) (Export, error) {
	var e Export
	err := row.Scan(&e.ID, &e.TenantID, &e.UserID, &e.RequestedBy, &e.State, &e.Attempts, &e.LastError, &e.Parts, &e.Bytes, &e.SHA256,
		&e.CreatedAt, &e.FinishedAt, &e.ExpiresAt, &e.objectKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, sdk.Errorf(sdk.ErrNotFound, "no such export")
	}
	if e.Parts == nil {
		e.Parts = []ExportPart{}
	}
	return e, err
}

// RequestExport records a person's export in tx and queues it. The caller
// has checked who may ask, and audits the request.
func (s *Service) RequestExport(ctx context.Context, tx pgx.Tx, tenantID, userID uuid.UUID, requestedBy string) (Export, error) {
	if err := s.requireStorage(); err != nil {
		return Export{}, err
	}
	id := uuid.Must(uuid.NewV7())
	if _, err := tx.Exec(ctx, `INSERT INTO kernel.data_exports (id, tenant_id, user_id, requested_by) VALUES ($1, $2, $3, $4)`,
		id, tenantID, userID, requestedBy); err != nil {
		return Export{}, err
	}
	if _, err := s.queue.InsertTx(ctx, tx, exportArgs{ExportID: id}, &river.InsertOpts{MaxAttempts: s.opts.MaxAttempts}); err != nil {
		return Export{}, err
	}
	return s.GetExport(ctx, tx, tenantID, id)
}

// GetExport returns an export of the institution.
func (s *Service) GetExport(ctx context.Context, q database.Querier, tenantID, id uuid.UUID) (Export, error) {
	return scanExport(q.QueryRow(ctx, `SELECT `+exportColumns+` FROM kernel.data_exports WHERE id = $1 AND tenant_id = $2`, id, tenantID))
}

// ListExports returns the institution's exports of people (of one person
// when userID is set), newest first, with IDs below before.
func (s *Service) ListExports(ctx context.Context, q database.Querier, tenantID uuid.UUID, userID *uuid.UUID, before uuid.UUID, limit int) ([]Export, error) {
	rows, err := q.Query(ctx, `SELECT `+exportColumns+` FROM kernel.data_exports
		WHERE tenant_id = $1 AND user_id IS NOT NULL AND ($2::uuid IS NULL OR user_id = $2)
		  AND ($3::uuid = '00000000-0000-0000-0000-000000000000' OR id < $3)
		ORDER BY id DESC LIMIT $4`, tenantID, userID, before, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Export, error) { return scanExport(r) })
}

// Link signs a short-lived download URL of a ready export. The caller
// audits it; every download through it is audited too (ServeDownload).
func (s *Service) Link(ctx context.Context, q database.Querier, tenantID, id uuid.UUID) (DownloadLink, error) {
	if err := s.requireStorage(); err != nil {
		return DownloadLink{}, err
	}
	e, err := s.GetExport(ctx, q, tenantID, id)
	if err != nil {
		return DownloadLink{}, err
	}
	switch {
	case e.State == ExportExpired || e.State == ExportReady && e.ExpiresAt != nil && !s.now().Before(*e.ExpiresAt):
		return DownloadLink{}, sdk.Errorf(sdk.ErrGone, "the export expired; ask for a new one").WithCode("export-expired")
	case e.State == ExportFailed:
		return DownloadLink{}, sdk.Errorf(sdk.ErrConflict, "the export failed and will not be ready; ask for a new one").WithCode("export-failed")
	case e.State != ExportReady:
		return DownloadLink{}, sdk.Errorf(sdk.ErrConflict, "the export is %s, not ready yet", e.State).WithCode("export-not-ready")
	}
	expires := s.store.Now().Add(s.opts.LinkExpiry).Truncate(time.Second)
	if e.ExpiresAt != nil && expires.After(*e.ExpiresAt) {
		expires = e.ExpiresAt.Truncate(time.Second)
	}
	url := s.store.Signer().URL(blobstore.Grant{Method: http.MethodGet, Key: *e.objectKey, Expires: expires})
	return DownloadLink{URL: url, ExpiresAt: expires, Bytes: *e.Bytes, SHA256: *e.SHA256}, nil
}

// IsBundleKey reports whether a signed URL's bucket key is an export
// archive's, which ServeDownload serves.
func IsBundleKey(key string) bool { return strings.HasPrefix(key, blobstore.KernelPrefix) }

// ServeDownload answers a signed URL of an export archive: it checks the
// signature and expiry, audits the download in the export's institution's
// chain (an institution's export, in the platform chain), and streams the
// archive as an attachment. It writes nothing when it fails: the caller
// answers the error.
func (s *Service) ServeDownload(w http.ResponseWriter, r *http.Request, key, ip, requestID string) error {
	if err := s.requireStorage(); err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	default:
		w.Header().Set("Allow", "GET, HEAD")
		return &sdk.Error{Kind: sdk.ErrBadRequest, Code: "method-not-allowed", Detail: "an export's URL answers GET or HEAD"}
	}
	if _, err := s.store.Signer().Check(r.Method, key, r.URL.Query(), s.store.Now()); err != nil {
		return err
	}
	ctx := r.Context()
	e, err := scanExport(s.pool.QueryRow(ctx, `SELECT `+exportColumns+` FROM kernel.data_exports WHERE object_key = $1`, key))
	if errors.Is(err, sdk.ErrNotFound) || err == nil && e.State != ExportReady {
		return sdk.Errorf(sdk.ErrGone, "the export is no longer available; ask for a new one").WithCode("export-expired")
	}
	if err != nil {
		return err
	}
	rd, err := s.store.Bucket().NewReader(ctx, key, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return sdk.Errorf(sdk.ErrGone, "the export is no longer available; ask for a new one").WithCode("export-expired")
	}
	if err != nil {
		return sdk.Errorf(sdk.ErrUnavailable, "reading the export failed; retry shortly")
	}
	defer rd.Close()
	if r.Method == http.MethodGet {
		entry := audit.Entry{ActorType: "link", ActorID: "signed-url", Action: "privacy.export.downloaded", Target: "export:" + e.ID.String(),
			Data: map[string]any{"export_id": e.ID.String(), "bytes": rd.Size()}, IP: ip, RequestID: requestID}
		if e.UserID != nil {
			entry.TenantID = e.TenantID.String()
			entry.Data["user_id"] = e.UserID.String()
		} else {
			entry.Data["tenant_id"] = e.TenantID.String()
		}
		if err := database.InTx(ctx, s.pool, func(tx pgx.Tx) error { return audit.Append(ctx, tx, entry) }); err != nil {
			return err
		}
	}
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Length", strconv.FormatInt(rd.Size(), 10))
	if e.SHA256 != nil {
		h.Set("ETag", `"`+*e.SHA256+`"`)
	}
	h.Set("Cache-Control", "private, no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="edulure-export-%s.zip"`, e.ID))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(w, rd); err != nil {
		return errors.Join(blobstore.ErrAfterHeaders, err)
	}
	return nil
}

// exportArgs is one export; each River attempt is one attempt of it.
type exportArgs struct {
	ExportID uuid.UUID `json:"export_id"`
}

func (exportArgs) Kind() string { return "edulure.privacy_export" }

type exportWorker struct {
	river.WorkerDefaults[exportArgs]
	s *Service
}

func (w *exportWorker) Timeout(*river.Job[exportArgs]) time.Duration { return -1 }

func (w *exportWorker) NextRetry(job *river.Job[exportArgs]) time.Time {
	return time.Now().Add(w.s.backoff(job.Attempt))
}

// Work builds a person's archive: every plugin's part that declares
// personal data (enabled for the institution or not) and the kernel's,
// each plugin's stream checked against its manifest; it stores the
// archive and makes the export ready. Any failure fails the attempt: an
// archive is never partial.
func (w *exportWorker) Work(ctx context.Context, job *river.Job[exportArgs]) error {
	s := w.s
	e, err := scanExport(s.pool.QueryRow(ctx, `SELECT `+exportColumns+` FROM kernel.data_exports WHERE id = $1`, job.Args.ExportID))
	if errors.Is(err, sdk.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if e.State != ExportQueued && e.State != ExportRunning || e.UserID == nil {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `UPDATE kernel.data_exports SET state = 'running', attempts = $2, started_at = coalesce(started_at, now()) WHERE id = $1`,
		e.ID, job.Attempt); err != nil {
		return err
	}
	key := fmt.Sprintf("%sexports/%s/%s.zip", blobstore.KernelPrefix, e.TenantID, e.ID)
	m, size, sum, err := s.buildPersonBundle(ctx, e, key)
	if err != nil {
		return s.exportFailed(ctx, e, job, err)
	}
	expires := s.now().Add(s.opts.ExportRetention)
	var ready bool
	err = database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE kernel.data_exports SET state = 'ready', parts = $2, object_key = $3, bytes = $4, sha256 = $5,
			finished_at = now(), expires_at = $6, last_error = NULL WHERE id = $1 AND state = 'running'`, e.ID, m.Parts, key, size, sum, expires)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		ready = true
		// It names the export, never the person.
		_, err = outbox.Add(ctx, tx, outbox.Event{Type: outbox.ExportCompleted, TenantID: e.TenantID.String(), Actor: system + ":privacy",
			Data: map[string]any{"export_id": e.ID, "bytes": size, "sha256": sum, "expires_at": expires.UTC()}})
		return err
	})
	if err == nil && !ready {
		// The person was erased meanwhile (their exports with them): the
		// archive must not outlive the record.
		return s.deleteObject(context.WithoutCancel(ctx), key)
	}
	return err
}

func (s *Service) exportFailed(ctx context.Context, e Export, job *river.Job[exportArgs], failure error) error {
	ctx = context.WithoutCancel(ctx)
	s.logger.Warn("export failed", "export", e.ID, "attempt", job.Attempt, "error", failure)
	state := ExportQueued
	if job.Attempt >= job.MaxAttempts {
		state = ExportFailed
	}
	if _, err := s.pool.Exec(ctx, `UPDATE kernel.data_exports SET state = $2, last_error = $3, finished_at = CASE WHEN $2 = 'failed' THEN now() END WHERE id = $1`,
		e.ID, state, errorText(failure)); err != nil {
		return err
	}
	if state == ExportFailed {
		return river.JobCancel(failure)
	}
	return failure
}

// buildPersonBundle writes a person's archive and stores it under key.
func (s *Service) buildPersonBundle(ctx context.Context, e Export, key string) (BundleManifest, int64, string, error) {
	b, err := newBundle()
	if err != nil {
		return BundleManifest{}, 0, "", err
	}
	defer b.close()
	if err := s.exportPersonKernel(ctx, b, e.TenantID, *e.UserID); err != nil {
		return BundleManifest{}, 0, "", wrap("the kernel's part", err)
	}
	for _, p := range s.plugins.PersonalDataPlugins() {
		if !p.Classes {
			continue
		}
		if err := s.exportPersonPlugin(ctx, b, p.Name, p.Version, e); err != nil {
			return BundleManifest{}, 0, "", err
		}
	}
	m, size, sum, err := b.finish(BundleManifest{ExportID: e.ID.String(), TenantID: e.TenantID.String(), UserID: e.UserID.String(), CreatedAt: s.now()})
	if err != nil {
		return m, 0, "", err
	}
	if err := s.upload(ctx, key, b); err != nil {
		return m, 0, "", err
	}
	return m, size, sum, nil
}

func (s *Service) exportPersonPlugin(ctx context.Context, b *bundle, plugin, version string, e Export) error {
	x, err := b.pluginExport(plugin, version)
	if err != nil {
		return err
	}
	defer x.close()
	cctx, cancel := s.callCtx(ctx)
	defer cancel()
	err = s.plugins.ExportPersonalData(cctx, plugin, &pluginv1.PersonalDataExportRequest{
		TenantId: e.TenantID.String(), UserId: e.UserID.String(), RequestId: e.ID.String(),
	}, x.recv)
	if err != nil {
		return err
	}
	return x.finish()
}

// upload stores the finished archive in the bucket.
func (s *Service) upload(ctx context.Context, key string, b *bundle) error {
	w, err := s.store.Bucket().NewWriter(ctx, key, &blob.WriterOptions{ContentType: "application/zip", DisableContentTypeDetection: true})
	if err != nil {
		return fmt.Errorf("storing the archive: %w", err)
	}
	if _, err := io.Copy(w, b.f); err != nil {
		_ = w.Close()
		return fmt.Errorf("storing the archive: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("storing the archive: %w", err)
	}
	return nil
}

// deleteObject deletes one of the kernel's objects (gone already: fine).
func (s *Service) deleteObject(ctx context.Context, key string) error {
	if s.store == nil {
		return nil
	}
	err := s.store.Bucket().Delete(ctx, key)
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	return nil
}

// withdrawExports deletes the archives of every ready export of the
// institution made before an erasure: they may mention the erased person
// (an admin's export lists the invitations they sent). Their owners ask
// again.
func (s *Service) withdrawExports(ctx context.Context, tenantID uuid.UUID) (int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, object_key FROM kernel.data_exports WHERE tenant_id = $1 AND user_id IS NOT NULL AND state = 'ready'`, tenantID)
	if err != nil {
		return 0, err
	}
	type ex struct {
		ID  uuid.UUID
		Key *string
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ex])
	if err != nil {
		return 0, err
	}
	for _, x := range list {
		if x.Key != nil {
			if err := s.deleteObject(ctx, *x.Key); err != nil {
				return 0, err
			}
		}
		if _, err := s.pool.Exec(ctx, `UPDATE kernel.data_exports SET state = 'expired', expires_at = now(),
			last_error = 'withdrawn: a person was erased from the institution, and the archive may have mentioned them' WHERE id = $1`, x.ID); err != nil {
			return 0, err
		}
	}
	return int64(len(list)), nil
}

// cleanupArgs is the hourly removal of expired archives.
type cleanupArgs struct{}

func (cleanupArgs) Kind() string { return "edulure.privacy_cleanup" }

type cleanupWorker struct {
	river.WorkerDefaults[cleanupArgs]
	s *Service
}

// Work deletes the archives of exports past their expiry.
func (w *cleanupWorker) Work(ctx context.Context, _ *river.Job[cleanupArgs]) error {
	s := w.s
	rows, err := s.pool.Query(ctx, `SELECT id, object_key FROM kernel.data_exports WHERE state = 'ready' AND expires_at <= now() LIMIT 1000`)
	if err != nil {
		return err
	}
	type ex struct {
		ID  uuid.UUID
		Key *string
	}
	list, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ex])
	if err != nil {
		return err
	}
	for _, x := range list {
		if x.Key != nil {
			if err := s.deleteObject(ctx, *x.Key); err != nil {
				return err
			}
		}
		if _, err := s.pool.Exec(ctx, `UPDATE kernel.data_exports SET state = 'expired' WHERE id = $1`, x.ID); err != nil {
			return err
		}
	}
	return nil
}
