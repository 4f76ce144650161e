package httpapi

import (
	"net/http"

	"github.com/edulure/edulure/kernel/internal/audit"
	"github.com/edulure/edulure/kernel/internal/auditcheck"
	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/kernel/internal/events"
	"github.com/edulure/edulure/kernel/internal/identity"
	"github.com/edulure/edulure/kernel/internal/jobs"
	"github.com/edulure/edulure/kernel/internal/privacy"
	"github.com/edulure/edulure/kernel/internal/supervisor"
	"github.com/edulure/edulure/kernel/internal/tenancy"
	"github.com/edulure/edulure/kernel/internal/token"
	"github.com/edulure/edulure/sdk"
	"github.com/google/uuid"
)

// kernelRoutes is the kernel's route table: every route, its access level,
// the permission it needs, and its request and response types.
func (s *Server) kernelRoutes() []Route {
	const (
		get, post, put, patch, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
	)
	ok, created, accepted, none := http.StatusOK, http.StatusCreated, http.StatusAccepted, http.StatusNoContent
	return []Route{
		// Operations.
		{Method: get, Path: "/healthz", Tag: "operations", Summary: "Liveness: the process is up", Response: HealthResponse{}, Status: ok, Handler: s.healthz},
		{Method: get, Path: "/readyz", Tag: "operations", Summary: "Readiness: the database answers (and each plugin's state)", Response: HealthResponse{}, Status: ok, Also: map[int]any{http.StatusServiceUnavailable: HealthResponse{}}, Handler: s.readyz},
		{Method: get, Path: "/metrics", Tag: "operations", Summary: "Prometheus metrics, the plugins' merged in (behind EDULURE_METRICS_TOKEN, _BASIC_AUTH and _ALLOW when set)", Response: "", ContentType: "text/plain", Status: ok, Errors: []int{401, 403}, Handler: s.metricsHandler},
		{Method: get, Path: "/api/openapi.json", Tag: "operations", Summary: "This OpenAPI document", Response: map[string]any{}, Status: ok, Handler: s.openAPI},
		{Method: get, Path: "/.well-known/jwks.json", Tag: "auth", Summary: "Public keys that verify access tokens", Response: token.JWKS{}, Status: ok, Handler: s.jwks},

		// Authentication.
		{Method: post, Path: "/api/v1/auth/signup", Tag: "auth", Summary: "Create an account (optionally joining by invitation or self-signup)", Request: SignupRequest{}, Response: SignupResponse{}, Status: created, Errors: []int{403, 404, 409, 410}, AuthLimited: true, Handler: s.signup},
		{Method: post, Path: "/api/v1/auth/login", Tag: "auth", Summary: "Log in with email and password; may answer with an MFA challenge", Request: LoginRequest{}, Response: TokenResponse{}, Status: ok, Errors: []int{401, 403}, AuthLimited: true, Handler: s.login},
		{Method: post, Path: "/api/v1/auth/mfa/setup", Tag: "auth", Summary: "Enrol an authenticator during a login that requires MFA", Request: MFASetupRequest{}, Response: identity.TOTPEnrolment{}, Status: ok, Errors: []int{401, 409}, AuthLimited: true, Handler: s.mfaSetup},
		{Method: post, Path: "/api/v1/auth/mfa/verify", Tag: "auth", Summary: "Complete a login with a TOTP or recovery code", Request: MFAVerifyRequest{}, Response: TokenResponse{}, Status: ok, Errors: []int{401, 409}, AuthLimited: true, Handler: s.mfaVerify},
		{Method: post, Path: "/api/v1/auth/refresh", Tag: "auth", Summary: "Rotate a refresh token for new tokens", Request: RefreshRequest{}, Response: TokenResponse{}, Status: ok, Errors: []int{401}, AuthLimited: true, Handler: s.refresh},
		{Method: post, Path: "/api/v1/auth/logout", Tag: "auth", Summary: "Revoke the current session", Access: UserOnly, Status: none, Handler: s.logout},
		{Method: post, Path: "/api/v1/auth/switch", Tag: "auth", Summary: "Get tokens for another institution you belong to", Access: UserOnly, Request: SwitchRequest{}, Response: TokenResponse{}, Status: ok, Errors: []int{401}, AuthLimited: true, Handler: s.switchTenant},
		{Method: post, Path: "/api/v1/auth/password/forgot", Tag: "auth", Summary: "Request a password-reset token (sent by email)", Request: ForgotPasswordRequest{}, Response: AcceptedResponse{}, Status: http.StatusAccepted, AuthLimited: true, Handler: s.forgotPassword},
		{Method: post, Path: "/api/v1/auth/email/verify", Tag: "auth", Summary: "Verify an account's email address with the token sent to it", Request: VerifyEmailRequest{}, Status: none, Errors: []int{410}, AuthLimited: true, Handler: s.verifyEmail},
		{Method: post, Path: "/api/v1/auth/email/verify/resend", Tag: "auth", Summary: "Send my email address a new verification token (voids the previous one)", Access: UserOnly, Response: AcceptedResponse{}, Status: http.StatusAccepted, Errors: []int{409}, AuthLimited: true, Handler: s.resendVerification},
		{Method: post, Path: "/api/v1/auth/password/reset", Tag: "auth", Summary: "Set a new password with a reset token; revokes all sessions (and, for an unverified address, its keys and second factor)", Request: ResetPasswordRequest{}, Status: none, Errors: []int{410}, AuthLimited: true, Handler: s.resetPassword},

		// The caller.
		{Method: get, Path: "/api/v1/me", Tag: "me", Summary: "Who am I: user or API key, tenant, roles, memberships", Access: Authenticated, Response: MeResponse{}, Status: ok, Handler: s.me},
		{Method: get, Path: "/api/v1/me/permissions", Tag: "me", Summary: "What may I do in my current institution", Access: Authenticated, Response: PermissionsResponse{}, Status: ok, Handler: s.myPermissions},
		{Method: get, Path: "/api/v1/me/sessions", Tag: "me", Summary: "My active sessions", Access: UserOnly, Response: sdk.Page[identity.Session]{}, Status: ok, Handler: s.mySessions},
		{Method: del, Path: "/api/v1/me/sessions", Tag: "me", Summary: "Revoke all my sessions except this one", Access: UserOnly, Response: RevokedResponse{}, Status: ok, Handler: s.revokeMySessions},
		{Method: del, Path: "/api/v1/me/sessions/:session_id", Tag: "me", Summary: "Revoke one of my sessions", Access: UserOnly, Status: none, Handler: s.revokeMySession},
		{Method: post, Path: "/api/v1/me/password", Tag: "me", Summary: "Change my password (needs the current one); signs out my other sessions and tells me by email", Access: UserOnly, Request: ChangePasswordRequest{}, Response: PasswordChangedResponse{}, Status: ok, Errors: []int{429}, AuthLimited: true, Handler: s.changeMyPassword},
		{Method: post, Path: "/api/v1/me/mfa/totp", Tag: "me", Summary: "Start TOTP enrolment: secret and otpauth URL", Access: UserOnly, Response: identity.TOTPEnrolment{}, Status: ok, Errors: []int{409}, Handler: s.beginTOTP},
		{Method: post, Path: "/api/v1/me/mfa/totp/confirm", Tag: "me", Summary: "Confirm TOTP enrolment with a code; returns recovery codes once", Access: UserOnly, Request: CodeRequest{}, Response: RecoveryCodesResponse{}, Status: ok, Errors: []int{409, 429}, Handler: s.confirmTOTP},
		{Method: post, Path: "/api/v1/me/mfa/recovery-codes", Tag: "me", Summary: "Replace my recovery codes (needs a code)", Access: UserOnly, Request: CodeRequest{}, Response: RecoveryCodesResponse{}, Status: ok, Errors: []int{409, 429}, Handler: s.regenerateRecoveryCodes},
		{Method: post, Path: "/api/v1/me/mfa/disable", Tag: "me", Summary: "Turn off two-factor authentication (needs a code)", Access: UserOnly, Request: CodeRequest{}, Status: none, Errors: []int{409, 429}, Handler: s.disableMFA},
		{Method: post, Path: "/api/v1/me/invitations/accept", Tag: "me", Summary: "Join an institution with an invitation sent to my email", Access: UserOnly, Request: AcceptInvitationRequest{}, Response: tenancy.Membership{}, Status: ok, Errors: []int{409, 410}, Handler: s.acceptInvitation},
		{Method: post, Path: "/api/v1/me/data-export", Tag: "me", Summary: "Ask for an export of my personal data in my current institution (an archive, built in the background)", Access: TenantScoped, Permission: "privacy.export.self", Response: privacy.Export{}, Status: accepted, Idempotent: true, Handler: s.requestMyExport},
		{Method: get, Path: "/api/v1/me/data-exports", Tag: "me", Summary: "My data exports in my current institution, newest first", Access: TenantScoped, Permission: "privacy.export.self", Response: sdk.Page[privacy.Export]{}, Status: ok, Query: PageQuery{}, Handler: s.listMyExports},
		{Method: get, Path: "/api/v1/me/data-exports/:export_id", Tag: "me", Summary: "One of my data exports: its state, parts and size", Access: TenantScoped, Permission: "privacy.export.self", Response: privacy.Export{}, Status: ok, Handler: s.getMyExport},
		{Method: post, Path: "/api/v1/me/data-exports/:export_id/download", Tag: "me", Summary: "A short-lived signed URL of my export's archive (audited, as is every download)", Access: TenantScoped, Permission: "privacy.export.self", Response: privacy.DownloadLink{}, Status: ok, Errors: []int{409, 410}, Handler: s.downloadMyExport},
		{Method: post, Path: "/api/v1/me/erasure", Tag: "me", Summary: "Ask to be erased from my current institution (after its cool-off, cancellable until then)", Access: TenantScoped, Permission: "privacy.erasure.self", Response: privacy.Request{}, Status: accepted, Idempotent: true, Handler: s.requestMyErasure},
		{Method: get, Path: "/api/v1/me/erasures", Tag: "me", Summary: "My erasure requests in my current institution, newest first", Access: TenantScoped, Permission: "privacy.erasure.self", Response: sdk.Page[privacy.Request]{}, Status: ok, Query: MyErasuresQuery{}, Handler: s.listMyErasures},
		{Method: get, Path: "/api/v1/me/erasures/:erasure_id", Tag: "me", Summary: "One of my erasure requests, with its steps and history", Access: TenantScoped, Permission: "privacy.erasure.self", Response: privacy.Request{}, Status: ok, Handler: s.getMyErasure},
		{Method: post, Path: "/api/v1/me/erasures/:erasure_id/cancel", Tag: "me", Summary: "Cancel my erasure request during its cool-off", Access: TenantScoped, Permission: "privacy.erasure.self", Response: privacy.Request{}, Status: ok, Errors: []int{409}, Handler: s.cancelMyErasure},

		// The caller's institution.
		{Method: get, Path: "/api/v1/tenant", Tag: "tenant", Summary: "My institution's settings", Access: TenantScoped, Permission: "tenancy.settings.read", Response: tenancy.Tenant{}, Status: ok, Handler: s.getTenant},
		{Method: patch, Path: "/api/v1/tenant", Tag: "tenant", Summary: "Change my institution's settings", Access: TenantScoped, Permission: "tenancy.settings.update", Request: UpdateTenantRequest{}, Response: tenancy.Tenant{}, Status: ok, Handler: s.updateTenant},
		{Method: get, Path: "/api/v1/tenant/members", Tag: "tenant", Summary: "List members", Access: TenantScoped, Permission: "tenancy.member.read", Response: sdk.Page[tenancy.Member]{}, Status: ok, Query: PageQuery{}, Handler: s.listMembers},
		{Method: get, Path: "/api/v1/tenant/members/:user_id", Tag: "tenant", Summary: "One member", Access: TenantScoped, Permission: "tenancy.member.read", Response: tenancy.Member{}, Status: ok, Handler: s.getMember},
		{Method: put, Path: "/api/v1/tenant/members/:user_id/roles", Tag: "tenant", Summary: "Replace a member's roles", Access: TenantScoped, Permission: "tenancy.member.update", Request: SetRolesRequest{}, Response: tenancy.Member{}, Status: ok, Errors: []int{409}, Handler: s.setMemberRoles},
		{Method: del, Path: "/api/v1/tenant/members/:user_id", Tag: "tenant", Summary: "Remove a member", Access: TenantScoped, Permission: "tenancy.member.remove", Status: none, Errors: []int{409}, Handler: s.removeMember},
		{Method: post, Path: "/api/v1/tenant/invitations", Tag: "tenant", Summary: "Invite someone by email", Access: TenantScoped, Permission: "tenancy.member.invite", Request: InviteRequest{}, Response: InvitationCreated{}, Status: created, Errors: []int{409}, Idempotent: true, Handler: s.invite},
		{Method: get, Path: "/api/v1/tenant/invitations", Tag: "tenant", Summary: "List invitations", Access: TenantScoped, Permission: "tenancy.member.invite", Response: sdk.Page[tenancy.Invitation]{}, Status: ok, Query: PageQuery{}, Handler: s.listInvitations},
		{Method: del, Path: "/api/v1/tenant/invitations/:invitation_id", Tag: "tenant", Summary: "Revoke a pending invitation", Access: TenantScoped, Permission: "tenancy.member.invite", Status: none, Errors: []int{409}, Handler: s.revokeInvitation},
		{Method: get, Path: "/api/v1/tenant/roles", Tag: "tenant", Summary: "Roles with their permissions (built-in and custom)", Access: TenantScoped, Permission: "tenancy.role.read", Response: sdk.Page[tenancy.Role]{}, Status: ok, Handler: s.listRoles},
		{Method: put, Path: "/api/v1/tenant/roles/:role", Tag: "tenant", Summary: "Create a custom role or change a role's permissions", Access: TenantScoped, Permission: "tenancy.role.manage", Request: PutRoleRequest{}, Response: tenancy.Role{}, Status: ok, Handler: s.putRole},
		{Method: del, Path: "/api/v1/tenant/roles/:role", Tag: "tenant", Summary: "Delete a custom role, or reset a built-in role to its defaults", Access: TenantScoped, Permission: "tenancy.role.manage", Status: none, Errors: []int{409}, Handler: s.deleteRole},
		{Method: get, Path: "/api/v1/tenant/permissions", Tag: "tenant", Summary: "The permission catalogue", Access: TenantScoped, Permission: "tenancy.role.read", Response: sdk.Page[authz.Permission]{}, Status: ok, Handler: s.listPermissions},
		{Method: post, Path: "/api/v1/tenant/apikeys", Tag: "tenant", Summary: "Create an API key (the secret is shown once)", Access: TenantScoped, Permission: "identity.apikey.create", Request: CreateAPIKeyRequest{}, Response: APIKeyCreated{}, Status: created, Idempotent: true, Handler: s.createAPIKey},
		{Method: get, Path: "/api/v1/tenant/apikeys", Tag: "tenant", Summary: "List API keys", Access: TenantScoped, Permission: "identity.apikey.read", Response: sdk.Page[identity.APIKey]{}, Status: ok, Handler: s.listAPIKeys},
		{Method: del, Path: "/api/v1/tenant/apikeys/:key_id", Tag: "tenant", Summary: "Revoke an API key", Access: TenantScoped, Permission: "identity.apikey.revoke", Response: identity.APIKey{}, Status: ok, Errors: []int{409}, Handler: s.revokeAPIKey},
		{Method: get, Path: "/api/v1/tenant/plugins", Tag: "tenant", Summary: "Plugins installed on the platform and their setting for my institution", Access: TenantScoped, Permission: "tenancy.plugin.read", Response: sdk.Page[PluginView]{}, Status: ok, Handler: s.listTenantPlugins},
		{Method: put, Path: "/api/v1/tenant/plugins/:name", Tag: "tenant", Summary: "Enable or disable a plugin for my institution and set its configuration", Access: TenantScoped, Permission: "tenancy.plugin.manage", Request: PutPluginRequest{}, Response: PluginView{}, Status: ok, Handler: s.putTenantPlugin},
		{Method: get, Path: "/api/v1/tenant/grants", Tag: "tenant", Summary: "The institution's grants, by kind and ID: each member and role they hold, custom roles, API keys, with orphans marked (API keys of removed members, roles nobody holds)", Access: TenantScoped, Permission: "tenancy.grant.read", Response: sdk.Page[sdk.Grant]{}, Status: ok, Query: GrantsQuery{}, Handler: s.listGrants},
		{Method: get, Path: "/api/v1/tenant/audit", Tag: "tenant", Summary: "The institution's audit log, newest first, filtered by action, actor, target and time", Access: TenantScoped, Permission: "audit.log.read", Response: sdk.Page[audit.Entry]{}, Status: ok, Query: AuditQuery{}, Handler: s.tenantAudit},
		{Method: get, Path: "/api/v1/tenant/personal-data", Tag: "privacy", Summary: "What the platform holds about people: the kernel's and every plugin's data classes, purpose and retention", Access: TenantScoped, Permission: "tenancy.settings.read", Response: privacy.Catalogue{}, Status: ok, Handler: s.personalDataCatalogue},
		{Method: post, Path: "/api/v1/tenant/members/:user_id/data-export", Tag: "privacy", Summary: "Export a member's personal data (an archive, built in the background)", Access: TenantScoped, Permission: "privacy.export.manage", Response: privacy.Export{}, Status: accepted, Idempotent: true, Handler: s.requestMemberExport},
		{Method: get, Path: "/api/v1/tenant/data-exports", Tag: "privacy", Summary: "The institution's data exports, newest first", Access: TenantScoped, Permission: "privacy.export.manage", Response: sdk.Page[privacy.Export]{}, Status: ok, Query: ExportsQuery{}, Handler: s.listTenantExports},
		{Method: get, Path: "/api/v1/tenant/data-exports/:export_id", Tag: "privacy", Summary: "One data export: its state, parts and size", Access: TenantScoped, Permission: "privacy.export.manage", Response: privacy.Export{}, Status: ok, Handler: s.getTenantExport},
		{Method: post, Path: "/api/v1/tenant/data-exports/:export_id/download", Tag: "privacy", Summary: "A short-lived signed URL of an export's archive (audited, as is every download)", Access: TenantScoped, Permission: "privacy.export.manage", Response: privacy.DownloadLink{}, Status: ok, Errors: []int{409, 410}, Handler: s.downloadTenantExport},
		{Method: post, Path: "/api/v1/tenant/members/:user_id/erasure", Tag: "privacy", Summary: "Erase a member (or former member) from the institution: every plugin's part and the kernel's, after the institution's cool-off", Access: TenantScoped, Permission: "privacy.erasure.manage", Response: privacy.Request{}, Status: accepted, Idempotent: true, Handler: s.requestMemberErasure},
		{Method: get, Path: "/api/v1/tenant/erasures", Tag: "privacy", Summary: "The institution's erasure requests, newest first, with their steps", Access: TenantScoped, Permission: "privacy.erasure.manage", Response: sdk.Page[privacy.Request]{}, Status: ok, Query: ErasuresQuery{}, Handler: s.listTenantErasures},
		{Method: get, Path: "/api/v1/tenant/erasures/:erasure_id", Tag: "privacy", Summary: "One erasure request with its steps and history", Access: TenantScoped, Permission: "privacy.erasure.manage", Response: privacy.Request{}, Status: ok, Handler: s.getTenantErasure},
		{Method: post, Path: "/api/v1/tenant/erasures/:erasure_id/cancel", Tag: "privacy", Summary: "Cancel an erasure request during its cool-off", Access: TenantScoped, Permission: "privacy.erasure.manage", Response: privacy.Request{}, Status: ok, Errors: []int{409}, Handler: s.cancelTenantErasure},
		{Method: post, Path: "/api/v1/tenant/erasures/:erasure_id/resume", Tag: "privacy", Summary: "Start a failed erasure's unfinished steps again, with fresh automatic retries", Access: TenantScoped, Permission: "privacy.erasure.manage", Response: privacy.Request{}, Status: ok, Errors: []int{409}, Handler: s.resumeErasure},
		{Method: get, Path: "/api/v1/tenant/audit/checkpoints", Tag: "tenant", Summary: "The signed checkpoints of the institution's audit chain, newest first (signed notes; keep copies to detect a truncation or rewrite later)", Access: TenantScoped, Permission: "audit.log.read", Response: sdk.Page[auditcheck.Checkpoint]{}, Status: ok, Query: PageQuery{}, Handler: s.tenantCheckpoints},
		{Method: get, Path: "/api/v1/tenant/audit/checkpoints/verify", Tag: "tenant", Summary: "Verify the institution's audit chain and that it still holds its last signed checkpoint", Access: TenantScoped, Permission: "audit.log.read", Response: auditcheck.Result{}, Status: ok, Handler: s.verifyTenantCheckpoints},
		{Method: get, Path: "/api/v1/tenant/audit/verify", Tag: "tenant", Summary: "Verify the institution's audit hash chain", Access: TenantScoped, Permission: "audit.log.read", Response: audit.Result{}, Status: ok, Handler: s.verifyTenantAudit},

		// Events and jobs: an institution's admins see their institution's;
		// operators with no institution in their token see all.
		{Method: get, Path: "/api/v1/events/types", Tag: "events", Summary: "The event type catalogue: schemas, publisher and subscribers", Access: Authenticated, Response: sdk.Page[events.TypeInfo]{}, Status: ok, Handler: s.eventTypes},
		{Method: get, Path: "/api/v1/events", Tag: "events", Summary: "Recent events, newest first, with delivery counts by status; filtered by type and by the time they occurred (from, to: RFC 3339); with their data for callers holding tenancy.event.data.read (operators: platform.event.data.read)", Access: TenantScoped, Permission: "tenancy.event.read", PlatformPermission: "platform.event.read", Response: sdk.Page[events.EventInfo]{}, Status: ok, Query: EventsQuery{}, Handler: s.listEvents},
		{Method: post, Path: "/api/v1/events/replay", Tag: "events", Summary: "Deliver a part of the event log (one event or a range of seqs) to a subscriber again", Access: TenantScoped, Permission: "tenancy.event.replay", PlatformPermission: "platform.event.replay", Request: LogReplayRequest{}, Response: LogReplayResponse{}, Status: http.StatusAccepted, Errors: []int{409}, Handler: s.replayLog},
		{Method: get, Path: "/api/v1/events/deliveries", Tag: "events", Summary: "Delivery rows, newest first: the deliveries that failed (pending a retry, dead, or delivered on a retry) or wait behind one (pending), and those skipped while pending", Access: TenantScoped, Permission: "tenancy.event.read", PlatformPermission: "platform.event.read", Response: sdk.Page[events.DeliveryInfo]{}, Status: ok, Query: DeliveriesQuery{}, Handler: s.listDeliveries},
		{Method: get, Path: "/api/v1/events/deliveries/:delivery_id", Tag: "events", Summary: "One delivery with its event and last error", Access: TenantScoped, Permission: "tenancy.event.read", PlatformPermission: "platform.event.read", Response: events.DeliveryInfo{}, Status: ok, Handler: s.getDelivery},
		{Method: post, Path: "/api/v1/events/deliveries/:delivery_id/replay", Tag: "events", Summary: "Deliver one event to its subscriber again, with fresh attempts", Access: TenantScoped, Permission: "tenancy.event.replay", PlatformPermission: "platform.event.replay", Response: ReplayResponse{}, Status: ok, Errors: []int{409}, Handler: s.replayDelivery},
		{Method: post, Path: "/api/v1/events/deliveries/replay", Tag: "events", Summary: "Deliver a range of deliveries again (by default: the dead letters)", Access: TenantScoped, Permission: "tenancy.event.replay", PlatformPermission: "platform.event.replay", Request: ReplayRequest{}, Response: ReplayResponse{}, Status: ok, Handler: s.replayDeliveries},
		{Method: post, Path: "/api/v1/events/deliveries/discard", Tag: "events", Summary: "Delete dead letters (by IDs, or a range like a replay) that will not be replayed", Access: TenantScoped, Permission: "tenancy.event.replay", PlatformPermission: "platform.event.replay", Request: ReplayRequest{}, Response: DiscardResponse{}, Status: ok, Handler: s.discardDeliveries},
		{Method: get, Path: "/api/v1/jobs", Tag: "jobs", Summary: "Jobs the plugins declare, with schedule, next and last run", Access: TenantScoped, Permission: "tenancy.job.read", PlatformPermission: "platform.job.read", Response: sdk.Page[jobs.JobInfo]{}, Status: ok, Handler: s.listJobs},
		{Method: get, Path: "/api/v1/jobs/:plugin/:job/runs", Tag: "jobs", Summary: "A job's runs, newest first", Access: TenantScoped, Permission: "tenancy.job.read", PlatformPermission: "platform.job.read", Response: sdk.Page[jobs.RunInfo]{}, Status: ok, Query: RunsQuery{}, Handler: s.listJobRuns},
		{Method: get, Path: "/api/v1/jobs/:plugin/:job/runs/:run_id", Tag: "jobs", Summary: "One run with each attempt's start, end, outcome and error", Access: TenantScoped, Permission: "tenancy.job.read", PlatformPermission: "platform.job.read", Response: jobs.RunInfo{}, Status: ok, Handler: s.getJobRun},
		{Method: post, Path: "/api/v1/jobs/:plugin/:job/runs", Tag: "jobs", Summary: "Run a job now (needs the job's permission: by default tenancy.job.run, or platform.job.run for platform jobs)", Access: Authenticated, Request: RunJobRequest{}, BodyOptional: true, Response: jobs.RunInfo{}, Status: http.StatusAccepted, Errors: []int{403}, Handler: s.runJob},

		// Platform operators.
		{Method: post, Path: "/api/v1/tenants", Tag: "platform", Summary: "Create an institution", Access: Platform, Permission: "platform.tenant.create", Request: CreateTenantRequest{}, Response: TenantCreated{}, Status: created, Errors: []int{409}, Idempotent: true, Handler: s.createTenant},
		{Method: get, Path: "/api/v1/tenants", Tag: "platform", Summary: "List institutions", Access: Platform, Permission: "platform.tenant.read", Response: sdk.Page[tenancy.Tenant]{}, Status: ok, Query: PageQuery{}, Handler: s.listTenants},
		{Method: get, Path: "/api/v1/tenants/:tenant_id", Tag: "platform", Summary: "One institution", Access: Platform, Permission: "platform.tenant.read", Response: tenancy.Tenant{}, Status: ok, Handler: s.getTenantByID},
		{Method: get, Path: "/api/v1/plugins", Tag: "platform", Summary: "Installed plugins: version, state, restarts, last error", Access: Platform, Permission: "platform.plugin.read", Response: sdk.Page[supervisor.Status]{}, Status: ok, Handler: s.listPlugins},
		{Method: post, Path: "/api/v1/plugins/reload", Tag: "platform", Summary: "Re-read plugins.hcl: start new plugins, upgrade changed ones without failing requests, stop removed ones", Access: Platform, Permission: "platform.plugin.manage", Response: supervisor.ReloadResult{}, Status: ok, Errors: []int{422}, Handler: s.reloadPlugins},
		{Method: get, Path: "/api/v1/admin/keys", Tag: "platform", Summary: "Token signing keys", Access: Platform, Permission: "platform.keys.manage", Response: sdk.Page[token.KeyInfo]{}, Status: ok, Handler: s.listKeys},
		{Method: post, Path: "/api/v1/tenants/:tenant_id/offboarding/preview", Tag: "platform", Summary: "Dry run of an institution's offboarding: what each plugin and the kernel would erase, table by table", Access: Platform, Permission: "platform.tenant.offboard", Response: privacy.OffboardingPreview{}, Status: ok, Errors: []int{409}, Handler: s.previewOffboarding},
		{Method: post, Path: "/api/v1/tenants/:tenant_id/offboarding", Tag: "platform", Summary: "Offboard an institution: stop its sign-ins, export everything, then erase it from every plugin and the kernel", Access: Platform, Permission: "platform.tenant.offboard", Request: OffboardingRequest{}, Response: privacy.Request{}, Status: accepted, Idempotent: true, Errors: []int{409}, Handler: s.offboard},
		{Method: get, Path: "/api/v1/tenants/:tenant_id/offboarding", Tag: "platform", Summary: "An institution's offboarding, with its steps and history", Access: Platform, Permission: "platform.tenant.offboard", Response: privacy.Request{}, Status: ok, Errors: []int{409}, Handler: s.getOffboarding},
		{Method: post, Path: "/api/v1/tenants/:tenant_id/offboarding/resume", Tag: "platform", Summary: "Start a failed offboarding's unfinished steps again", Access: Platform, Permission: "platform.tenant.offboard", Response: privacy.Request{}, Status: ok, Errors: []int{409}, Handler: s.resumeOffboarding},
		{Method: get, Path: "/api/v1/tenants/:tenant_id/offboarding/export", Tag: "platform", Summary: "The export of an offboarded institution", Access: Platform, Permission: "platform.tenant.offboard", Response: privacy.Export{}, Status: ok, Errors: []int{409}, Handler: s.getOffboardingExport},
		{Method: post, Path: "/api/v1/tenants/:tenant_id/offboarding/export/download", Tag: "platform", Summary: "A short-lived signed URL of an offboarded institution's export (audited, as is every download)", Access: Platform, Permission: "platform.tenant.offboard", Response: privacy.DownloadLink{}, Status: ok, Errors: []int{409, 410}, Handler: s.downloadOffboardingExport},
		{Method: post, Path: "/api/v1/admin/keys/rotate", Tag: "platform", Summary: "Rotate the signing key (old tokens stay valid)", Access: Platform, Permission: "platform.keys.manage", Response: RotatedResponse{}, Status: created, Handler: s.rotateKey},
		{Method: del, Path: "/api/v1/admin/keys/:kid", Tag: "platform", Summary: "Retire a signing key: tokens it signed stop working", Access: Platform, Permission: "platform.keys.manage", Status: none, Errors: []int{409}, Handler: s.retireKey},
		{Method: get, Path: "/api/v1/admin/audit", Tag: "platform", Summary: "The platform audit chain, newest first, filtered as the institution's", Access: Platform, Permission: "platform.audit.read", Response: sdk.Page[audit.Entry]{}, Status: ok, Query: AuditQuery{}, Handler: s.platformAudit},
		{Method: get, Path: "/api/v1/admin/audit/checkpoints", Tag: "platform", Summary: "The signed checkpoints of the platform audit chain, newest first", Access: Platform, Permission: "platform.audit.read", Response: sdk.Page[auditcheck.Checkpoint]{}, Status: ok, Query: PageQuery{}, Handler: s.platformCheckpoints},
		{Method: get, Path: "/api/v1/admin/audit/checkpoints/verify", Tag: "platform", Summary: "Verify the platform audit chain and that it still holds its last signed checkpoint", Access: Platform, Permission: "platform.audit.read", Response: auditcheck.Result{}, Status: ok, Handler: s.verifyPlatformCheckpoints},
		{Method: post, Path: "/api/v1/admin/audit/checkpoints", Tag: "platform", Summary: "Verify every audit chain and sign checkpoints of those that grew, now (as the hourly run does); a failure publishes audit.verification.failed.v1", Access: Platform, Permission: "platform.audit.checkpoint", Response: sdk.Page[auditcheck.Result]{}, Status: ok, Handler: s.runCheckpoints},
		{Method: get, Path: "/api/v1/admin/audit/verify", Tag: "platform", Summary: "Verify the platform audit chain", Access: Platform, Permission: "platform.audit.read", Response: audit.Result{}, Status: ok, Handler: s.verifyPlatformAudit},
	}
}

// PathParams declares the kernel's path parameters by name (the json tag)
// for the document; a route may use no other.
type PathParams struct {
	SessionID    uuid.UUID `json:"session_id" doc:"A session's ID."`
	UserID       uuid.UUID `json:"user_id" doc:"A person's ID."`
	InvitationID uuid.UUID `json:"invitation_id" doc:"An invitation's ID."`
	Role         string    `json:"role" doc:"A role's name: admin, instructor, learner or a custom role."`
	KeyID        uuid.UUID `json:"key_id" doc:"An API key's ID."`
	Name         string    `json:"name" doc:"A plugin's name."`
	DeliveryID   int64     `json:"delivery_id" minimum:"1" doc:"A delivery's ID."`
	Plugin       string    `json:"plugin" doc:"The name of the plugin that declares the job."`
	Job          string    `json:"job" doc:"The job's name."`
	RunID        uuid.UUID `json:"run_id" doc:"A run's ID."`
	TenantID     uuid.UUID `json:"tenant_id" doc:"An institution's ID."`
	KID          string    `json:"kid" doc:"A signing key's ID: the kid of the tokens it signs."`
	ExportID     uuid.UUID `json:"export_id" doc:"A data export's ID."`
	ErasureID    uuid.UUID `json:"erasure_id" doc:"An erasure request's ID."`
}
