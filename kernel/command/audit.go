package command

import (
	"context"
	"fmt"
	"io"

	"github.com/edulure/edulure/kernel/internal/audit"
	"github.com/edulure/edulure/kernel/internal/tenancy"
)

func init() {
	commands["audit-verify"] = command{synopsis: "Verify audit hash chains: [-tenant slug] (default: every chain)", run: auditVerify}
}

func auditVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audit-verify", stderr)
	slug := fs.String("tenant", "", "verify only this institution's chain")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	pool, _, err := openAdmin(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	chains := []string{""}
	if *slug != "" {
		t, err := tenancy.GetTenantBySlug(ctx, pool, *slug)
		if err != nil {
			return err
		}
		chains = []string{t.ID.String()}
	} else {
		rows, err := pool.Query(ctx, `SELECT DISTINCT tenant_id::text FROM kernel.audit_log WHERE tenant_id IS NOT NULL ORDER BY 1`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			chains = append(chains, id)
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	broken := 0
	for _, c := range chains {
		res, err := audit.Verify(ctx, pool, c)
		if err != nil {
			return err
		}
		if res.Valid {
			erased := ""
			if res.Erased > 0 {
				erased = fmt.Sprintf(" (%d with personal values erased)", res.Erased)
			}
			fmt.Fprintf(stdout, "ok      %s: %d entries%s\n", res.Chain, res.Entries, erased)
		} else {
			broken++
			fmt.Fprintf(stdout, "BROKEN  %s: entry %d of %d: %s\n", res.Chain, res.BrokenAt, res.Entries, res.Reason)
		}
	}
	if broken > 0 {
		return fmt.Errorf("%d audit chain(s) failed verification", broken)
	}
	return nil
}
