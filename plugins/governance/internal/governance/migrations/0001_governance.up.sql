-- The governance plugin's tables. Every table has tenant_id: the kernel
-- enables and forces row-level security on each, restricted to the
-- transaction's institution.
--
-- Actors are written as the SDK's actor strings ("user:<id>",
-- "apikey:<id>"): an API key can act too.

-- Incidents group evidence (docs/governance.md, "Evidence archive").
CREATE TABLE incidents (
    tenant_id   uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    title       text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 5000),
    status      text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_by  text        NOT NULL CHECK (created_by ~ '^(user|apikey|plugin):[0-9a-z-]{1,64}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz,
    closed_by   text        CHECK (closed_by ~ '^(user|apikey|plugin):[0-9a-z-]{1,64}$'),
    -- What opened an incident the plugin opened on its own
    -- ('audit_verification'); one open incident per kind at a time.
    opened_for  text        CHECK (opened_for ~ '^[a-z_]{1,40}$'),
    UNIQUE (tenant_id, id)
);
CREATE INDEX incidents_list ON incidents (tenant_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX incidents_open_for ON incidents (tenant_id, opened_for) WHERE status = 'open' AND opened_for IS NOT NULL;

-- Evidence items: one object each in the plugin's storage, written once
-- (the key is the item's, and every write asks If-None-Match: *). sha256
-- and size are what the kernel recorded when the object was stored; a
-- stored item's content fields never change (trigger below).
CREATE TABLE evidence_items (
    tenant_id       uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    incident_id     uuid,
    kind            text        NOT NULL CHECK (kind IN ('upload', 'retention_execution', 'access_review', 'billing_anomaly', 'audit_verification')),
    title           text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    object_key      text        NOT NULL CHECK (object_key ~ '^evidence/[0-9a-f-]{36}$'),
    content_type    text        NOT NULL CHECK (content_type ~ '^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$'),
    declared_sha256 text        CHECK (declared_sha256 ~ '^[0-9a-f]{64}$'),
    declared_size   bigint      CHECK (declared_size >= 0),
    sha256          text        CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size            bigint      CHECK (size >= 0),
    state           text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'stored')),
    added_by        text        NOT NULL CHECK (added_by ~ '^(user|apikey|plugin):[0-9a-z-]{1,64}$'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    stored_at       timestamptz,
    CHECK ((state = 'stored') = (sha256 IS NOT NULL AND size IS NOT NULL AND stored_at IS NOT NULL)),
    UNIQUE (tenant_id, id),
    UNIQUE (tenant_id, object_key),
    FOREIGN KEY (tenant_id, incident_id) REFERENCES incidents (tenant_id, id)
);
CREATE INDEX evidence_items_incident ON evidence_items (tenant_id, incident_id, created_at, id);

CREATE FUNCTION evidence_items_write_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state = 'stored' AND (NEW.sha256 IS DISTINCT FROM OLD.sha256 OR NEW.size IS DISTINCT FROM OLD.size
        OR NEW.object_key IS DISTINCT FROM OLD.object_key OR NEW.state IS DISTINCT FROM OLD.state
        OR NEW.incident_id IS DISTINCT FROM OLD.incident_id OR NEW.stored_at IS DISTINCT FROM OLD.stored_at) THEN
        RAISE EXCEPTION 'evidence item % is stored: its content is written once', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER evidence_items_write_once BEFORE UPDATE ON evidence_items
    FOR EACH ROW EXECUTE FUNCTION evidence_items_write_once();

-- Chain of custody: who added, viewed, exported or verified an item.
-- Appended only; never updated except by a person's erasure (actor).
CREATE TABLE custody_events (
    tenant_id  uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    item_id    uuid        NOT NULL,
    action     text        NOT NULL CHECK (action IN ('added', 'viewed', 'exported', 'verified', 'integrity_failed')),
    actor      text        NOT NULL CHECK (actor ~ '^(user|apikey|plugin):[0-9a-z-]{1,64}$'),
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    request_id text        NOT NULL DEFAULT '' CHECK (char_length(request_id) <= 100),
    sha256     text        CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    FOREIGN KEY (tenant_id, item_id) REFERENCES evidence_items (tenant_id, id)
);
CREATE INDEX custody_events_item ON custody_events (tenant_id, item_id, at, id);

-- Retention policies: per institution, a period and an action for one
-- data class a plugin declares (Host.RetentionClasses).
CREATE TABLE retention_policies (
    tenant_id   uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    plugin      text        NOT NULL CHECK (plugin ~ '^[a-z][a-z0-9_]{0,39}$'),
    class       text        NOT NULL CHECK (class ~ '^[a-z][a-z0-9_]{0,62}$'),
    period_days integer     NOT NULL CHECK (period_days BETWEEN 1 AND 36500),
    action      text        NOT NULL CHECK (action IN ('delete', 'anonymise', 'archive')),
    created_by  text        NOT NULL CHECK (created_by ~ '^(user|apikey|plugin):[0-9a-z-]{1,64}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, plugin, class)
);

-- Legal holds: while active (released_at NULL) they suspend retention for
-- what they cover: a person, a course or another kind a plugin declares,
-- or the whole institution (kind 'tenant', no subject).
CREATE TABLE legal_holds (
    tenant_id   uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    kind        text        NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,39}$'),
    subject_id  text        CHECK (char_length(subject_id) BETWEEN 1 AND 200),
    reason      text        NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 1000),
    created_by  text        NOT NULL CHECK (created_by ~ '^(user|apikey|plugin):[0-9a-z-]{1,64}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    released_at timestamptz,
    released_by text        CHECK (released_by ~ '^(user|apikey|plugin):[0-9a-z-]{1,64}$'),
    CHECK ((kind = 'tenant') = (subject_id IS NULL))
);
CREATE INDEX legal_holds_active ON legal_holds (tenant_id) WHERE released_at IS NULL;

-- Retention executions: what one run did, signed by the kernel's key.
-- payload is the exact document signed (canonical JSON); signature the
-- kernel's JWS over it. Written once when the run ends.
CREATE TABLE retention_executions (
    tenant_id     uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    trigger       text        NOT NULL CHECK (trigger IN ('manual', 'schedule')),
    dry_run       boolean     NOT NULL,
    scheduled_for timestamptz,
    status        text        NOT NULL CHECK (status IN ('succeeded', 'failed')),
    policy_hash   text        NOT NULL CHECK (policy_hash ~ '^[0-9a-f]{64}$'),
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL,
    duration_ms   bigint      NOT NULL CHECK (duration_ms >= 0),
    matched       bigint      NOT NULL DEFAULT 0,
    affected      bigint      NOT NULL DEFAULT 0,
    failures      integer     NOT NULL DEFAULT 0,
    payload       bytea       NOT NULL,
    signature     jsonb       NOT NULL,
    started_by    text        CHECK (started_by ~ '^(user|apikey|plugin):[0-9a-z-]{1,64}$'),
    evidence_id   uuid,
    UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX retention_executions_slot ON retention_executions (tenant_id, scheduled_for) WHERE scheduled_for IS NOT NULL;
CREATE INDEX retention_executions_list ON retention_executions (tenant_id, started_at DESC, id DESC);

-- Access review campaigns: the grants of the institution frozen when the
-- campaign starts (Host.Grants), each attested keep or revoke.
CREATE TABLE review_campaigns (
    tenant_id   uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    title       text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    status      text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    created_by  text        NOT NULL CHECK (created_by ~ '^(user|apikey|plugin):[0-9a-z-]{1,64}$'),
    started_at  timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz,
    closed_by   text        CHECK (closed_by ~ '^(user|apikey|plugin):[0-9a-z-]{1,64}$'),
    grants      integer     NOT NULL DEFAULT 0,
    evidence_id uuid,
    -- The slot of the institution's review_schedule that started it; NULL
    -- when started by hand.
    scheduled_for timestamptz,
    UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX review_campaigns_slot ON review_campaigns (tenant_id, scheduled_for) WHERE scheduled_for IS NOT NULL;
CREATE INDEX review_campaigns_list ON review_campaigns (tenant_id, started_at DESC, id DESC);

CREATE TABLE review_items (
    tenant_id      uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    campaign_id    uuid        NOT NULL,
    grant_kind     text        NOT NULL CHECK (grant_kind ~ '^[a-z_]{1,40}$'),
    grant_id       text        NOT NULL CHECK (char_length(grant_id) BETWEEN 1 AND 200),
    user_id        uuid,
    role           text        NOT NULL DEFAULT '' CHECK (char_length(role) <= 100),
    key_id         text        NOT NULL DEFAULT '' CHECK (char_length(key_id) <= 100),
    permissions    text[]      NOT NULL DEFAULT '{}',
    granted_at     timestamptz,
    orphan         boolean     NOT NULL DEFAULT false,
    orphan_reason  text        NOT NULL DEFAULT '' CHECK (char_length(orphan_reason) <= 500),
    decision       text        CHECK (decision IN ('keep', 'revoke')),
    decided_by     text        CHECK (decided_by ~ '^(user|apikey|plugin):[0-9a-z-]{1,64}$'),
    decided_at     timestamptz,
    note           text        NOT NULL DEFAULT '' CHECK (char_length(note) <= 1000),
    revocation     text        CHECK (revocation IN ('applied', 'verified', 'failed')),
    revocation_error text      NOT NULL DEFAULT '' CHECK (char_length(revocation_error) <= 1000),
    revoked_at     timestamptz,
    FOREIGN KEY (tenant_id, campaign_id) REFERENCES review_campaigns (tenant_id, id)
);
CREATE INDEX review_items_campaign ON review_items (tenant_id, campaign_id, grant_kind, grant_id);
CREATE INDEX review_items_user ON review_items (tenant_id, user_id) WHERE user_id IS NOT NULL;

-- Erasure receipts: a signed record of each completed erasure, per plugin
-- and table, without personal data (the erasure's ID, counts, times).
CREATE TABLE erasure_receipts (
    tenant_id    uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    erasure_id   text        NOT NULL CHECK (char_length(erasure_id) BETWEEN 1 AND 100),
    completed_at timestamptz NOT NULL,
    counts       jsonb       NOT NULL,
    payload      bytea       NOT NULL,
    signature    jsonb       NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, erasure_id)
);
