package governance_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// A person's data: their custody links, a legal hold on them and their
// grant under review. Exported, then erased: the records stay under the
// erasure's pseudonym.
func TestPersonalDataExportAndErase(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a := newInst(t)
	inc := openIncident(t, h, a.officer, "Matter")
	item := upload(t, h, a.officer, inc.ID, "Memo", []byte("memo"))
	learner := a.learner.UserID
	require.NoError(t, h.InTenant(a.id, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx(), `INSERT INTO legal_holds (kind, subject_id, reason, created_by) VALUES ('person', $1, 'Pending appeal of the learner', $2)`,
			learner, a.officer.Actor()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx(), `INSERT INTO review_campaigns (id, title, created_by) VALUES ('00000000-0000-4000-8000-000000000001', 'Q4', $1)`, a.officer.Actor()); err != nil {
			return err
		}
		_, err := tx.Exec(ctx(), `INSERT INTO review_items (campaign_id, grant_kind, grant_id, user_id, role, note, decided_by, decision)
			VALUES ('00000000-0000-4000-8000-000000000001', 'role', $1::text, $1::uuid, 'learner', 'Left in June', $2, 'revoke')`, learner, a.officer.Actor())
		return err
	}))

	ex := h.ExportPersonalData(t, a.id, learner)
	require.Len(t, ex.Rows("legal_holds"), 1)
	require.Len(t, ex.Rows("review_items"), 1)
	officer := h.ExportPersonalData(t, a.id, a.officer.UserID)
	require.NotEmpty(t, officer.References("custody_events"), "the officer's custody links are theirs")

	h.ErasePersonalData(t, a.id, learner)
	h.ErasePersonalData(t, a.id, a.officer.UserID)
	h.RequireNoTrace(t, learner, a.officer.UserID)
	// The records stay.
	var n int
	require.NoError(t, h.InTenant(a.id, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx(), `SELECT (SELECT count(*) FROM legal_holds) + (SELECT count(*) FROM review_items) + (SELECT count(*) FROM custody_events WHERE item_id = $1)`, item.ID).Scan(&n)
	}))
	require.Equal(t, 3, n)

	h.EraseTenant(t, a.id)
}
