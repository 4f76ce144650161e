package sdk

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// RetentionArchivePrefix is where the generic archive action writes: each
// batch's rows as one object, retention/<class>/<date>/<batch>.jsonl.gz
// in the institution's object storage of the plugin (<date> the UTC day
// of the execution, <batch> a UUIDv7 of the batch, so keys sort by time),
// gzipped JSON lines, one row (every column, as to_jsonb gives it) per
// line, written once (IfNotExists).
const RetentionArchivePrefix = "retention/"

// RetentionArchiveKey is the key of one batch's archive.
func RetentionArchiveKey(class string, day time.Time, batch string) string {
	return fmt.Sprintf("%s%s/%s/%s.jsonl.gz", RetentionArchivePrefix, class, day.UTC().Format(time.DateOnly), batch)
}

// canArchive reports whether the plugin may archive: it holds storage.
func (rt *runtime) canArchive() bool {
	return slices.Contains(rt.wire.Capabilities, string(CapStorage))
}

// archiveBatch writes the locked rows of a batch (found by their places,
// as the change statement finds them) to the institution's object storage
// and returns the object's key. It runs in the batch's transaction, before
// the rows are deleted: a failure here fails the batch, and nothing of it
// is deleted.
func (rt *runtime) archiveBatch(ctx context.Context, r *RetentionRun, p *retentionPlan, t pgx.Tx, tids []string, oids []uint32) (string, error) {
	const places = "t.ctid = ANY($1::text[]::tid[]) AND (t.tableoid, t.ctid) IN (SELECT u.o, u.c FROM unnest($2::oid[], $1::text[]::tid[]) AS u(o, c))"
	rows, err := t.Query(ctx, "SELECT to_jsonb(t)::text FROM "+p.table+" t WHERE "+places+" ORDER BY t."+p.time+", "+
		trimParens(p.keyList("t")), tids, oids)
	if err != nil {
		return "", fmt.Errorf("reading the rows to archive: %w", err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	var line string
	if _, err := pgx.ForEachRow(rows, []any{&line}, func() error {
		if _, err := zw.Write([]byte(line)); err != nil {
			return err
		}
		_, err := zw.Write([]byte{'\n'})
		return err
	}); err != nil {
		return "", fmt.Errorf("reading the rows to archive: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	key := RetentionArchiveKey(r.Class.Name, time.Now(), uuid.Must(uuid.NewV7()).String())
	if _, err := r.Storage().Put(ctx, key, &buf, PutOptions{ContentType: "application/gzip", IfNotExists: true}); err != nil {
		return "", fmt.Errorf("storing the archive %s: %w", key, err)
	}
	return key, nil
}

func trimParens(s string) string {
	if len(s) >= 2 && s[0] == '(' && s[len(s)-1] == ')' {
		return s[1 : len(s)-1]
	}
	return s
}
