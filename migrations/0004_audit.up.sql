-- Append-only, hash-chained audit log. One chain per tenant ("platform" for
-- actions outside any tenant); each entry's hash covers the previous hash,
-- so editing or removing a row breaks the chain at that point.
CREATE TABLE kernel.audit_log (
    id          bigserial PRIMARY KEY,
    chain       text NOT NULL,
    seq         bigint NOT NULL,
    tenant_id   uuid,
    actor_type  text NOT NULL,
    actor_id    text NOT NULL,
    action      text NOT NULL,
    target      text NOT NULL DEFAULT '',
    data        jsonb NOT NULL DEFAULT '{}',
    ip          text NOT NULL DEFAULT '',
    request_id  text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL,
    prev_hash   bytea NOT NULL,
    hash        bytea NOT NULL,
    UNIQUE (chain, seq)
);
CREATE INDEX audit_log_tenant_idx ON kernel.audit_log (tenant_id, id DESC);

CREATE FUNCTION kernel.audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'kernel.audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON kernel.audit_log
    FOR EACH ROW EXECUTE FUNCTION kernel.audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON kernel.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION kernel.audit_log_append_only();

REVOKE UPDATE, DELETE, TRUNCATE ON kernel.audit_log FROM PUBLIC;
