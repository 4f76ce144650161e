-- Signed checkpoints of the audit chains (docs/security.md, "Audit
-- checkpoints"): every hour the kernel verifies each chain (every
-- institution's and the platform's) against its last checkpoint and, when
-- the chain grew, signs its head as a signed note (golang.org/x/mod/sumdb/
-- note) with its Ed25519 signing key. Whoever holds a checkpoint can later
-- tell whether the chain still holds that head: a truncated or rewritten
-- chain no longer does, even one whose hashes were all recomputed.
CREATE TABLE kernel.audit_checkpoints (
    id         bigserial PRIMARY KEY,
    chain      text NOT NULL,           -- an institution's ID, or "platform"
    tenant_id  uuid,                    -- NULL for the platform chain; never a foreign key: checkpoints outlive an offboarding
    seq        bigint NOT NULL CHECK (seq >= 1),
    hash       bytea NOT NULL CHECK (length(hash) = 32),
    key_id     text NOT NULL,           -- the signing key (its kid in /.well-known/jwks.json)
    note       text NOT NULL,           -- the signed note: text and signature
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (chain, seq)
);
CREATE INDEX audit_checkpoints_chain ON kernel.audit_checkpoints (chain, seq DESC);

CREATE FUNCTION kernel.audit_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'kernel.audit_checkpoints is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE OR DELETE ON kernel.audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION kernel.audit_checkpoints_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON kernel.audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION kernel.audit_checkpoints_append_only();

REVOKE UPDATE, DELETE, TRUNCATE ON kernel.audit_checkpoints FROM PUBLIC;
