package governance

import "github.com/edulure/edulure/sdk"

// The personal data governance holds (docs/governance.md, "Personal
// data"). The SDK exports and erases it from these classes.
//
// The decision: what governance keeps is the institution's compliance
// record — policies, holds, executions, evidence and its chain of custody,
// review decisions — which outlives the people in it. So an erased
// person's ID becomes the erasure's pseudonym wherever it names them (as
// the actor of a custody link, the subject of a hold, the holder of a
// reviewed grant) and what they wrote about themselves goes; the records
// stay. The documents the plugin files as evidence itself (execution
// records, review reports, erasure receipts) name no person by design.
// Uploaded evidence files are the institution's, held for its legal
// claims: erasure does not open them (docs/governance.md says so).
func (p *Plugin) personalData() []sdk.DataClass {
	record := "Kept as the institution's compliance record; on erasure the person's ID becomes the erasure's pseudonym."
	return []sdk.DataClass{
		{
			Name: "legal_holds", Table: "legal_holds", Subject: "subject_id", OnErase: sdk.Anonymise,
			Purpose:   "Legal holds on a person's data (kind person: subject_id is their user ID).",
			Retention: "Until released, then as the institution's record; on erasure the hold's subject becomes the pseudonym the erasure gave the person's other rows, and its reason is emptied.",
			Columns: []sdk.PersonalColumn{
				{Name: "reason", Kind: sdk.FreeText, Description: "Why the hold was placed: may describe the person's case."},
				{Name: "created_by", Kind: sdk.ActorRef, Description: "Who placed it."},
				{Name: "released_by", Kind: sdk.ActorRef, Description: "Who released it."},
			},
		},
		{
			Name: "review_items", Table: "review_items", Subject: "user_id", OnErase: sdk.Anonymise,
			Purpose:   "The grants of a person frozen by an access review, and what reviewers decided.",
			Retention: record,
			Columns: []sdk.PersonalColumn{
				{Name: "grant_id", Kind: sdk.Identifier, Description: "The grant's ID at the kernel, which may hold the person's ID."},
				{Name: "note", Kind: sdk.FreeText, Description: "The reviewer's note on the decision."},
				{Name: "decided_by", Kind: sdk.ActorRef, Description: "The reviewer."},
			},
			NotPersonal: []string{"role", "key_id", "permissions", "orphan_reason", "revocation_error"},
		},
		{
			Name: "incidents", Table: "incidents", Purpose: "Incidents evidence is gathered for.", Retention: record,
			Columns: []sdk.PersonalColumn{
				{Name: "created_by", Kind: sdk.ActorRef, Description: "Who opened it."},
				{Name: "closed_by", Kind: sdk.ActorRef, Description: "Who closed it."},
			},
			NotPersonal: []string{"title", "description"},
		},
		{
			Name: "evidence_items", Table: "evidence_items", Purpose: "Evidence items and who added them.", Retention: record,
			Columns:     []sdk.PersonalColumn{{Name: "added_by", Kind: sdk.ActorRef, Description: "Who added it."}},
			NotPersonal: []string{"title"},
		},
		{
			Name: "custody_events", Table: "custody_events", Purpose: "The chain of custody: who added, viewed, exported or verified evidence.", Retention: record,
			Columns:     []sdk.PersonalColumn{{Name: "actor", Kind: sdk.ActorRef, Description: "Who did it."}},
			NotPersonal: []string{"request_id"},
		},
		{
			Name: "retention_policies", Table: "retention_policies", Purpose: "Retention policies and who set them.", Retention: record,
			Columns: []sdk.PersonalColumn{{Name: "created_by", Kind: sdk.ActorRef, Description: "Who set it."}},
		},
		{
			Name: "retention_executions", Table: "retention_executions", Purpose: "Retention executions and who started them.", Retention: record,
			Columns:     []sdk.PersonalColumn{{Name: "started_by", Kind: sdk.ActorRef, Description: "Who started a manual run (the signed record does not name them)."}},
			NotPersonal: []string{"signature"},
		},
		{
			Name: "review_campaigns", Table: "review_campaigns", Purpose: "Access review campaigns and who ran them.", Retention: record,
			Columns: []sdk.PersonalColumn{
				{Name: "created_by", Kind: sdk.ActorRef, Description: "Who started it."},
				{Name: "closed_by", Kind: sdk.ActorRef, Description: "Who closed it."},
			},
			NotPersonal: []string{"title"},
		},
	}
}
