package privacy

import (
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// KernelSource names the kernel's part of an export and of the catalogue.
const KernelSource = "kernel"

// col is a personal column of a kernel data class.
func col(name, kind, description string) *pluginv1.PersonalDataColumn {
	return &pluginv1.PersonalDataColumn{Name: name, Kind: kind, Description: description}
}

// KernelData describes the personal data the kernel holds, as a plugin's
// manifest describes its own (protocol §11.11): the same classes, checked
// against the kernel's schema by the same coverage check (a test fails
// when a kernel column that looks personal is described by no class). The
// kernel's own code exports and erases them (Custom): a person's export
// writes kernel/<class>.jsonl for each class with a file (exportPersonKernel);
// erasure is its steps kernel:access and kernel:data.
var KernelData = &pluginv1.PersonalDataManifest{
	Served: true,
	Classes: []*pluginv1.PersonalDataClass{
		{
			Name: "account", Table: "users", Subject: "id", OnErase: "anonymise", Custom: true,
			Purpose:   "The person's login: address, name, password hash and second factor.",
			Retention: "While they belong to an institution; anonymised (a tombstone keeps the ID valid) when their last institution erases them.",
			Columns: []*pluginv1.PersonalDataColumn{
				col("email", "email", "Their address, which they sign in with."),
				col("display_name", "name", "Their name as others see it."),
				col("password_hash", "other", "An argon2id hash of their password."),
			},
			NotPersonal: []string{"email_verified_at"},
		},
		{
			Name: "memberships", Table: "memberships", Subject: "user_id", OnErase: "delete", Custom: true,
			Purpose: "Which institutions they belong to, with which roles.", Retention: "While they are a member.",
			NotPersonal: []string{"roles"},
		},
		{
			Name: "sessions", Table: "sessions", Subject: "user_id", OnErase: "delete", Custom: true,
			Purpose:   "Their signed-in sessions: when, from where, with what.",
			Retention: "Until the session expires or is revoked, and then until the person is erased.",
			Columns: []*pluginv1.PersonalDataColumn{
				col("ip", "network", "The address the session last came from."),
				col("user_agent", "network", "The browser or app of the session."),
			},
			NotPersonal: []string{"revoked_reason"},
		},
		{
			Name: "mfa_recovery_codes", Table: "mfa_recovery_codes", Subject: "user_id", OnErase: "delete", Custom: true,
			Purpose: "Hashes of their two-factor recovery codes.", Retention: "Until replaced, or the account is anonymised.",
		},
		{
			Name: "mfa_challenges", Table: "mfa_challenges", Subject: "user_id", OnErase: "delete", Custom: true,
			Purpose: "A sign-in waiting for their second factor.", Retention: "Minutes.",
		},
		{
			Name: "password_resets", Table: "password_resets", Subject: "user_id", OnErase: "delete", Custom: true,
			Purpose: "Hashes of the password-reset tokens they asked for.", Retention: "Until used or expired, and then until the account is anonymised.",
		},
		{
			Name: "email_verifications", Table: "email_verifications", Subject: "user_id", OnErase: "delete", Custom: true,
			Purpose:   "Hashes of the tokens that verify their address, and the address each was sent to.",
			Retention: "Until the account is anonymised.",
			Columns:   []*pluginv1.PersonalDataColumn{col("email", "email", "The address the token was sent to.")},
		},
		{
			Name: "invitations", Table: "invitations", Subject: "accepted_by", OnErase: "delete", Custom: true,
			Purpose:   "Invitations to an institution, sent to an address.",
			Retention: "Deleted when the invited person is erased from the institution.",
			Columns: []*pluginv1.PersonalDataColumn{
				col("email", "email", "The address invited (found by it before the person has an account)."),
				col("invited_by", "user_ref", "Who sent the invitation."),
			},
			NotPersonal: []string{"roles"},
		},
		{
			Name: "api_keys", Table: "api_keys", Subject: "created_by", OnErase: "anonymise", Custom: true,
			Purpose:     "API keys a person made for the institution's service accounts.",
			Retention:   "The institution's: revoked and no longer naming their maker when the maker is erased.",
			NotPersonal: []string{"name", "permissions"},
		},
		{
			Name: "audit", Table: "audit_personal", OnErase: "anonymise", Custom: true,
			Purpose:   "The personal values of the audit log: who acted, on whom, the details and the caller's address.",
			Retention: "As long as the audit log; every value that mentions a person is erased with them, and the hash chain still verifies (docs/security.md).",
			Columns: []*pluginv1.PersonalDataColumn{
				col("actor_id", "identifier", "Who acted."),
				col("target", "other", "What or whom the action was on."),
				col("data", "other", "The action's details."),
				col("ip", "network", "The address the action came from."),
			},
			// The salts of the commitments go with their values.
			NotPersonal: []string{"chain", "ip_salt"},
		},
		{
			Name: "events", Table: "events", OnErase: "anonymise", Custom: true,
			Purpose:   "The event log: what happened, as the kernel and plugins published it.",
			Retention: "The event log's retention; the person's ID becomes a pseudonym and their address and name are erased when they are erased.",
			Columns: []*pluginv1.PersonalDataColumn{
				col("actor", "actor_ref", "Who caused the event."),
				col("data", "other", "The event's data, which may name the person."),
			},
			NotPersonal: []string{"type", "source", "rejected", "traceparent"},
		},
		{
			Name: "outbox", Table: "outbox", OnErase: "anonymise", Custom: true,
			Purpose:   "The kernel's events before the relay delivers them.",
			Retention: "Seconds.",
			Columns: []*pluginv1.PersonalDataColumn{
				col("actor", "actor_ref", "Who caused the event."),
				col("data", "other", "The event's data, which may name the person."),
			},
			NotPersonal: []string{"traceparent"},
		},
		{
			Name: "job_runs", Table: "job_runs", OnErase: "anonymise", Custom: true,
			Purpose:   "The history of job runs, with who asked for a manual run and its arguments.",
			Retention: "The job history's; the person's ID becomes a pseudonym when they are erased.",
			Columns: []*pluginv1.PersonalDataColumn{
				col("requested_by", "actor_ref", "Who asked for the run."),
				col("args", "other", "A manual run's arguments."),
				col("last_error", "free_text", "The last attempt's error."),
				col("output", "free_text", "What the run reported."),
			},
			NotPersonal: []string{"plugin", "job", "traceparent"},
		},
		{
			Name: "idempotency_keys", Table: "idempotency_keys", OnErase: "delete", Custom: true,
			Purpose:   "The first answer to a request with an Idempotency-Key, replayed to its retries.",
			Retention: "Hours; those of a person are deleted when they are erased.",
			Columns: []*pluginv1.PersonalDataColumn{
				col("scope", "identifier", "Who asked: their user or key ID and institution."),
				col("body", "other", "The answer, which may name people."),
			},
		},
		{
			Name: "tenant_plugins", Table: "tenant_plugins", OnErase: "anonymise", Custom: true,
			Purpose:     "The institution's choice of plugins and who last changed it.",
			Retention:   "The institution's; no longer naming the person when they are erased.",
			Columns:     []*pluginv1.PersonalDataColumn{col("updated_by", "user_ref", "Who changed it last.")},
			NotPersonal: []string{"config"},
		},
		{
			Name: "data_exports", Table: "data_exports", Subject: "user_id", OnErase: "delete", Custom: true,
			Purpose:   "The person's data exports; the archives themselves are in the object storage under kernel/exports/.",
			Retention: "The archive for 7 days (EDULURE_EXPORT_RETENTION); the record until the person is erased.",
			Columns: []*pluginv1.PersonalDataColumn{
				col("requested_by", "actor_ref", "Who asked for it."),
				col("last_error", "free_text", "Why an attempt failed."),
			},
			NotPersonal: []string{"parts", "object_key", "sha256"},
		},
		{
			Name: "erasure_requests", Table: "privacy_requests", Subject: "user_id", OnErase: "keep", Custom: true,
			Purpose:     "The record that a person's erasure was asked for and carried out: its steps and history, with the ID of whom it erased and nothing else of them.",
			Retention:   "Kept, as the institution's proof of the erasure.",
			Columns:     []*pluginv1.PersonalDataColumn{col("requested_by", "actor_ref", "Who asked for it.")},
			NotPersonal: []string{"kind", "tenant_slug", "outcome", "verification"},
		},
		{
			Name: "erasure_history", Table: "privacy_history", OnErase: "anonymise", Custom: true,
			Purpose:   "What happened to an erasure or an offboarding, and who did it.",
			Retention: "With its request.",
			Columns: []*pluginv1.PersonalDataColumn{
				col("actor", "actor_ref", "Who did it."),
				col("detail", "free_text", "What happened; an error's message."),
			},
			NotPersonal: []string{"event", "step"},
		},
		{
			Name: "deliveries", Table: "deliveries", OnErase: "anonymise", Custom: true,
			Purpose:   "Deliveries of events that failed or wait behind one, with a copy of their event (events v2: the log may be pruned first).",
			Retention: "Until delivered (and then the event log's retention) or, dead, until replayed or discarded; the person's ID becomes a pseudonym and their address and name are erased when they are erased.",
			Columns: []*pluginv1.PersonalDataColumn{
				col("actor", "actor_ref", "Who caused the event."),
				col("data", "other", "The event's data, which may name the person."),
				col("last_error", "free_text", "The subscriber's last error."),
			},
			NotPersonal: []string{"subscriber", "type", "source", "traceparent"},
		},
	},
	// A replica's ID and the subscription types of a cursor.
	NotPersonal: []string{"event_cursors.owner", "event_cursors.subscriber", "event_cursors.types", "event_cursors.reason"},
}

// Catalogue is what the platform holds about people, source by source: a
// record of processing that an institution's members can read.
type Catalogue struct {
	Sources []Source `json:"sources"`
}

// Source is the kernel's or one plugin's personal data.
type Source struct {
	Source  string `json:"source"`
	Version string `json:"version,omitempty"`
	// Served: the source exports and erases what it describes.
	Served  bool        `json:"served"`
	Classes []DataClass `json:"classes"`
}

// DataClass describes one kind of personal data.
type DataClass struct {
	Name         string       `json:"name"`
	Table        string       `json:"table,omitempty"`
	Subject      string       `json:"subject,omitempty"`
	Columns      []DataColumn `json:"columns"`
	Purpose      string       `json:"purpose,omitempty"`
	Retention    string       `json:"retention,omitempty"`
	OnErase      string       `json:"on_erase,omitempty"`
	ObjectPrefix string       `json:"object_prefix,omitempty"`
}

// DataColumn is a personal column of a data class.
type DataColumn struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Description string `json:"description,omitempty"`
}

// Catalogue describes the kernel's personal data and every loaded plugin's.
func (s *Service) Catalogue() Catalogue {
	out := Catalogue{Sources: []Source{source(KernelSource, "", KernelData)}}
	for _, p := range s.plugins.PersonalDataPlugins() {
		out.Sources = append(out.Sources, source(p.Name, p.Version, p.Data))
	}
	return out
}

func source(name, version string, pd *pluginv1.PersonalDataManifest) Source {
	src := Source{Source: name, Version: version, Served: pd.GetServed(), Classes: []DataClass{}}
	for _, c := range pd.GetClasses() {
		dc := DataClass{Name: c.Name, Table: c.Table, Subject: c.Subject, Purpose: c.Purpose, Retention: c.Retention,
			OnErase: c.OnErase, ObjectPrefix: c.ObjectPrefix, Columns: []DataColumn{}}
		for _, col := range c.Columns {
			dc.Columns = append(dc.Columns, DataColumn{Name: col.Name, Kind: col.Kind, Description: col.Description})
		}
		src.Classes = append(src.Classes, dc)
	}
	return src
}
