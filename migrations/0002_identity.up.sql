-- People. A user is global and may belong to several tenants.
CREATE TABLE kernel.users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL,
    display_name   text NOT NULL,
    password_hash  text NOT NULL,
    is_operator    boolean NOT NULL DEFAULT false,
    failed_logins  integer NOT NULL DEFAULT 0,
    locked_until   timestamptz,
    -- TOTP: the secret is sealed with the kernel's secret key. mfa_enabled_at
    -- is set once enrolment is confirmed; mfa_last_step stops code replay.
    mfa_secret     bytea,
    mfa_enabled_at timestamptz,
    mfa_last_step  bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON kernel.users (lower(email));

CREATE TABLE kernel.mfa_recovery_codes (
    user_id   uuid NOT NULL REFERENCES kernel.users ON DELETE CASCADE,
    code_hash bytea NOT NULL,
    used_at   timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- A session is one refresh-token family: every rotation stays in it, and the
-- reuse of a rotated token revokes it whole.
CREATE TABLE kernel.sessions (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES kernel.users ON DELETE CASCADE,
    tenant_id      uuid REFERENCES kernel.tenants ON DELETE CASCADE,
    mfa            boolean NOT NULL DEFAULT false,
    user_agent     text NOT NULL DEFAULT '',
    ip             text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text
);
CREATE INDEX sessions_user_idx ON kernel.sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_revoked_idx ON kernel.sessions (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE kernel.refresh_tokens (
    token_hash bytea PRIMARY KEY,
    session_id uuid NOT NULL REFERENCES kernel.sessions ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON kernel.refresh_tokens (session_id);

-- Second-factor step of a login: issued after the password, spent by a code.
CREATE TABLE kernel.mfa_challenges (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES kernel.users ON DELETE CASCADE,
    tenant_id  uuid REFERENCES kernel.tenants ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    used_at    timestamptz
);

CREATE TABLE kernel.password_resets (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES kernel.users ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

-- Access-token signing keys. Private keys are sealed with the kernel secret.
-- The newest unretired key signs; every unretired key verifies.
CREATE TABLE kernel.signing_keys (
    kid         text PRIMARY KEY,
    algorithm   text NOT NULL,
    private_key bytea NOT NULL,
    public_key  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);
