package outbox

import "encoding/json"

// Type is a kernel event type with the JSON Schema of its data, listed in
// GET /api/v1/events/types next to the plugins' types.
type Type struct {
	Type        string
	Description string
	Tenant      bool // carries the institution; false: a platform event
	Schema      json.RawMessage
}

func schema(required []string, props string) json.RawMessage {
	req, _ := json.Marshal(required)
	return json.RawMessage(`{"type":"object","required":` + string(req) + `,"properties":{` + props + `}}`)
}

const (
	uuidProp   = `{"type":"string","format":"uuid"}`
	stringProp = `{"type":"string"}`
	rolesProp  = `{"type":"array","items":{"type":"string"}}`
	timeProp   = `{"type":"string","format":"date-time"}`
	countProp  = `{"type":"integer","minimum":1}`
)

// Types are the kernel's event types. Secrets in them (reset, verification
// and invitation tokens) are meant for the recipient's inbox: a messaging
// plugin subscribes to send them. They are listed in secretFields, sealed at
// rest and opened for subscribers only (secret.go).
var Types = []Type{
	{UserCreated, "An account was created (sign-up, invitation or operator).", false,
		schema([]string{"user_id", "email"}, `"user_id":`+uuidProp+`,"email":`+stringProp+`,"display_name":`+stringProp)},
	{PasswordResetRequested, "Someone asked to reset an account's password; carries the one-time token to email.", false,
		schema([]string{"user_id", "email", "token", "expires_at"}, `"user_id":`+uuidProp+`,"email":`+stringProp+`,"display_name":`+stringProp+`,"token":`+stringProp+`,"expires_at":`+timeProp)},
	{VerificationRequested, "An account's email address needs verifying (after sign-up, or asked again); carries the one-time token to email. Whoever did not create the account should ignore it.", false,
		schema([]string{"user_id", "email", "token", "expires_at"}, `"user_id":`+uuidProp+`,"email":`+stringProp+`,"display_name":`+stringProp+`,"token":`+stringProp+`,"expires_at":`+timeProp)},
	{EmailVerified, "An account's email address was proven to be its owner's (the verification token, an invitation, a password reset, or an operator vouching at the console): mail may go to it.", false,
		schema([]string{"user_id", "email"}, `"user_id":`+uuidProp+`,"email":`+stringProp)},
	{MFALocked, "Too many wrong second-factor codes in a row locked an account's two-factor sign-in; tells the person, since whoever tried knew the password.", false,
		schema([]string{"user_id", "email", "failures", "locked_until"}, `"user_id":`+uuidProp+`,"email":`+stringProp+`,"display_name":`+stringProp+`,"failures":`+countProp+`,"locked_until":`+timeProp)},
	{PasswordChanged, "An account's password was changed by its owner while signed in (their other sessions signed out); tells the person, in case it was not them.", false,
		schema([]string{"user_id", "email", "changed_at"}, `"user_id":`+uuidProp+`,"email":`+stringProp+`,"display_name":`+stringProp+`,"changed_at":`+timeProp+`,"sessions_revoked":`+countProp)},
	{TenantCreated, "An institution was created.", true,
		schema([]string{"tenant_id", "slug", "name"}, `"tenant_id":`+uuidProp+`,"slug":`+stringProp+`,"name":`+stringProp)},
	{InvitationCreated, "Someone was invited to an institution; carries the invitation token to email.", true,
		schema([]string{"invitation_id", "email", "roles", "token"}, `"invitation_id":`+uuidProp+`,"email":`+stringProp+`,"roles":`+rolesProp+`,"token":`+stringProp+`,"tenant_slug":`+stringProp+`,"tenant_name":`+stringProp+`,"expires_at":`+timeProp)},
	{MemberJoined, "A user became a member of an institution.", true,
		schema([]string{"user_id", "roles"}, `"user_id":`+uuidProp+`,"roles":`+rolesProp+`,"invitation_id":`+uuidProp)},
	{MemberRolesChanged, "A member's roles changed.", true,
		schema([]string{"user_id", "roles"}, `"user_id":`+uuidProp+`,"roles":`+rolesProp+`,"previous_roles":`+rolesProp)},
	{MemberRemoved, "A member left or was removed from an institution.", true,
		schema([]string{"user_id"}, `"user_id":`+uuidProp)},
	{PluginEnabled, "An institution turned a plugin on (or, with was_enabled, changed the settings of one that was on).", true,
		schema([]string{"plugin"}, `"plugin":`+stringProp+`,"version":`+stringProp+`,"was_enabled":{"type":"boolean"}`)},
	{PluginDisabled, "An institution turned a plugin off (or, with was_enabled false, changed the settings of one that was off).", true,
		schema([]string{"plugin"}, `"plugin":`+stringProp+`,"version":`+stringProp+`,"was_enabled":{"type":"boolean"}`)},
	{ErasureCompleted, "A person's erasure from an institution completed: what each step (the kernel's, each plugin's) changed, per data class and table, and whether an export of the person then came back empty (verification). It names the erasure request, never the person.", true,
		schema([]string{"erasure_id", "self", "completed_at", "steps"}, `"erasure_id":`+uuidProp+`,"self":{"type":"boolean"},"started_at":`+timeProp+`,"completed_at":`+timeProp+
			`,"steps":{"type":"array","items":{"type":"object","required":["step","counts"],"properties":{"step":`+stringProp+
			`,"counts":{"type":"array","items":{"type":"object","properties":{"class":`+stringProp+`,"table":`+stringProp+
			`,"deleted":{"type":"integer"},"anonymised":{"type":"integer"},"references":{"type":"integer"},"objects":{"type":"integer"}}}}}}}`+
			`,"verification":{"type":"object","required":["verified_empty","checked_at","sources"],"properties":{"verified_empty":{"type":"boolean"},"checked_at":`+timeProp+
			`,"sources":{"type":"array","items":{"type":"object","required":["source","rows","objects"],"properties":{"source":`+stringProp+
			`,"rows":{"type":"integer"},"objects":{"type":"integer"},"error":`+stringProp+
			`,"classes":{"type":"array","items":{"type":"object","properties":{"class":`+stringProp+`,"table":`+stringProp+
			`,"rows":{"type":"integer"},"objects":{"type":"integer"}}}}}}}}}`)},
	{ExportCompleted, "A person's data export is ready to download. It names the export, never the person.", true,
		schema([]string{"export_id", "bytes", "sha256", "expires_at"}, `"export_id":`+uuidProp+`,"bytes":{"type":"integer"},"sha256":`+stringProp+`,"expires_at":`+timeProp)},
	{AuditCheckpointSigned, "The kernel signed a checkpoint of an audit chain's head (hourly, when the chain grew): a signed note, verifiable with the kernel's published keys. Platform chain: a platform event.", false,
		schema([]string{"chain", "seq", "hash", "signer", "note"}, `"chain":`+stringProp+`,"seq":{"type":"integer"},"hash":`+stringProp+`,"signer":`+stringProp+`,"note":`+stringProp)},
	{AuditVerificationFailed, "The scheduled verification found an audit chain broken: an entry changed, deleted or out of sequence, or the chain no longer holds its last signed checkpoint (truncated or rewritten). Platform chain: a platform event.", false,
		schema([]string{"chain", "reason"}, `"chain":`+stringProp+`,"reason":`+stringProp+`,"broken_at_seq":{"type":"integer"},"entries":{"type":"integer"},"checkpoint_seq":{"type":"integer"}`)},
}
