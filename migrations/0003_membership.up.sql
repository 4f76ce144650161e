CREATE TABLE kernel.memberships (
    tenant_id  uuid NOT NULL REFERENCES kernel.tenants ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES kernel.users ON DELETE CASCADE,
    roles      text[] NOT NULL CHECK (cardinality(roles) > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user_idx ON kernel.memberships (user_id);

-- Per-tenant role definitions: custom roles, and overrides of the built-in
-- roles' shipped defaults (a built-in role with no row uses the defaults).
CREATE TABLE kernel.roles (
    tenant_id   uuid NOT NULL REFERENCES kernel.tenants ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
    description text NOT NULL DEFAULT '',
    permissions text[] NOT NULL,
    builtin     boolean NOT NULL DEFAULT false,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);

CREATE TABLE kernel.invitations (
    id          uuid PRIMARY KEY,
    tenant_id   uuid NOT NULL REFERENCES kernel.tenants ON DELETE CASCADE,
    email       text NOT NULL,
    roles       text[] NOT NULL,
    token_hash  bytea NOT NULL UNIQUE,
    invited_by  uuid REFERENCES kernel.users ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    accepted_by uuid REFERENCES kernel.users ON DELETE SET NULL,
    revoked_at  timestamptz
);
CREATE INDEX invitations_tenant_idx ON kernel.invitations (tenant_id, created_at DESC);

-- API keys for service accounts. The secret is shown once; only its SHA-256
-- is kept (it is 256 random bits, so a slow hash adds nothing).
CREATE TABLE kernel.api_keys (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES kernel.tenants ON DELETE CASCADE,
    name         text NOT NULL,
    secret_hash  bytea NOT NULL,
    permissions  text[] NOT NULL,
    created_by   uuid REFERENCES kernel.users ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    last_used_at timestamptz
);
CREATE INDEX api_keys_tenant_idx ON kernel.api_keys (tenant_id, created_at DESC);
