-- The personal data lifecycle (docs/security.md, "Personal data"): the
-- audit log without personal values in its hashed content, accounts that
-- can be anonymised, export bundles, and erasure and offboarding requests
-- with their steps and history.

-- 1. Audit. An entry's personal values (its actor, target, data and the
-- caller's address) move to kernel.audit_personal, one row per entry. An
-- entry written from now on (format 2) hashes a salted SHA-256 commitment
-- to each value instead of the value: erasure empties the value and its
-- salt, and the chain still verifies, while the value can no longer be
-- confirmed by guessing. Entries written before (format 1) keep their hash
-- over the values: they verify as before while their values are there; the
-- first format-2 entry of a chain also hashes an anchor over the non-personal
-- part of every format-1 entry before it, which is what an erased format-1
-- entry verifies against.
CREATE TABLE kernel.audit_personal (
    entry_id   bigint PRIMARY KEY, -- kernel.audit_log (id), whose rows are never deleted
    chain      text NOT NULL,
    -- NULL: never set, or erased. A salt goes with its value.
    actor_id   text,
    actor_salt bytea,
    target     text,
    target_salt bytea,
    data       jsonb,
    data_salt  bytea,
    ip         text,
    ip_salt    bytea,
    erased_at  timestamptz
);
CREATE INDEX audit_personal_chain ON kernel.audit_personal (chain, entry_id);

INSERT INTO kernel.audit_personal (entry_id, chain, actor_id, target, data, ip)
SELECT id, chain, actor_id, target, data, ip FROM kernel.audit_log;

-- Dropping columns is not an UPDATE: the append-only triggers stay on.
ALTER TABLE kernel.audit_log
    DROP COLUMN actor_id,
    DROP COLUMN target,
    DROP COLUMN data,
    DROP COLUMN ip,
    ADD COLUMN format smallint NOT NULL DEFAULT 1 CHECK (format IN (1, 2)),
    -- format 2: the commitments to actor_id, target, data and ip, in that
    -- order (empty: the value was empty).
    ADD COLUMN commitments bytea[],
    -- format 2, on the first entry after format-1 entries: their anchor.
    ADD COLUMN v1_anchor bytea;
ALTER TABLE kernel.audit_log ALTER COLUMN format SET DEFAULT 2;

-- 2. Accounts. An erased account stays as a tombstone (IDs elsewhere stay
-- valid) without its address, name, password or second factor; its
-- address is free for a new account.
ALTER TABLE kernel.users ADD COLUMN erased_at timestamptz;
DROP INDEX kernel.users_email_key;
CREATE UNIQUE INDEX users_email_key ON kernel.users (lower(email)) WHERE erased_at IS NULL;

-- 3. Institutions: how long an erasure request waits before it runs (a
-- person can change their mind; an admin can cancel), and whether the
-- institution is being offboarded (nobody signs in to it any more).
ALTER TABLE kernel.tenants
    ADD COLUMN erasure_cool_off_hours integer NOT NULL DEFAULT 168 CHECK (erasure_cool_off_hours BETWEEN 0 AND 2160),
    ADD COLUMN offboarding_at timestamptz;

-- 4. Export bundles: one archive per request in the object storage under
-- the kernel's prefix, downloaded through short-lived signed URLs. A
-- person's export names them (user_id); an institution's (offboarding)
-- does not. No foreign key to the institution: an offboarding's export
-- outlives it.
CREATE TABLE kernel.data_exports (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL,
    user_id      uuid REFERENCES kernel.users,
    requested_by text NOT NULL,          -- "user:<id>", "apikey:<id>", "operator:<id>"
    state        text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'ready', 'failed', 'expired')),
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    parts        jsonb NOT NULL DEFAULT '[]',
    object_key   text COLLATE "C" UNIQUE,
    bytes        bigint,
    sha256       text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    started_at   timestamptz,
    finished_at  timestamptz,
    expires_at   timestamptz
);
CREATE INDEX data_exports_tenant ON kernel.data_exports (tenant_id, created_at DESC);
CREATE INDEX data_exports_user ON kernel.data_exports (user_id, tenant_id);
CREATE INDEX data_exports_expiry ON kernel.data_exports (expires_at) WHERE state = 'ready';

-- 5. Erasure of a person in an institution, and offboarding of an
-- institution: a request, its steps (one per plugin, and the kernel's),
-- each pending -> running -> done | failed, and its history.
CREATE TABLE kernel.privacy_requests (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('erasure', 'offboarding')),
    tenant_id       uuid NOT NULL,
    tenant_slug     text NOT NULL DEFAULT '',
    user_id         uuid REFERENCES kernel.users,
    requested_by    text NOT NULL,
    self            boolean NOT NULL DEFAULT false,
    was_member      boolean NOT NULL DEFAULT false,
    state           text NOT NULL CHECK (state IN ('scheduled', 'cancelled', 'running', 'retrying', 'failed', 'completed')),
    pseudonym       uuid NOT NULL,
    not_before      timestamptz NOT NULL,
    round           integer NOT NULL DEFAULT 1,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    outcome         jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    CHECK ((kind = 'erasure') = (user_id IS NOT NULL))
);
CREATE INDEX privacy_requests_tenant ON kernel.privacy_requests (tenant_id, created_at DESC);
-- One open erasure per person and institution; one offboarding per institution.
CREATE UNIQUE INDEX privacy_requests_open ON kernel.privacy_requests (tenant_id, user_id)
    WHERE kind = 'erasure' AND state IN ('scheduled', 'running', 'retrying', 'failed');
CREATE UNIQUE INDEX privacy_requests_offboarding ON kernel.privacy_requests (tenant_id) WHERE kind = 'offboarding';

CREATE TABLE kernel.privacy_steps (
    request_id  uuid NOT NULL REFERENCES kernel.privacy_requests ON DELETE CASCADE,
    step        text NOT NULL,           -- "kernel:access", "plugin:<name>", "kernel:data", "export"
    position    integer NOT NULL,
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'failed')),
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    counts      jsonb NOT NULL DEFAULT '[]',
    started_at  timestamptz,
    finished_at timestamptz,
    PRIMARY KEY (request_id, step)
);

CREATE TABLE kernel.privacy_history (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id uuid NOT NULL REFERENCES kernel.privacy_requests ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    event      text NOT NULL,
    step       text NOT NULL DEFAULT '',
    actor      text NOT NULL DEFAULT '',
    detail     text NOT NULL DEFAULT ''
);
CREATE INDEX privacy_history_request ON kernel.privacy_history (request_id, id);
