-- Telemetry: consent, learning statements (xAPI), rollups and exports.
-- Every table has a tenant_id: the kernel forces row-level security on it.

-- Versioned consent policies, per institution and purpose.
CREATE TABLE consent_policies (
    tenant_id  uuid NOT NULL,
    purpose    text NOT NULL CHECK (purpose ~ '^[a-z][a-z0-9_]{0,39}$'),
    version    integer NOT NULL CHECK (version >= 1),
    summary    text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, purpose, version)
);
COMMENT ON COLUMN consent_policies.created_by IS 'Personal: the actor (user:<id>) who published the version.';

-- Each person's consent decisions: append-only (a trigger refuses changes
-- other than erasure's pseudonym).
CREATE TABLE consent_decisions (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL,
    user_id        uuid NOT NULL,
    purpose        text NOT NULL,
    policy_version integer NOT NULL,
    granted        boolean NOT NULL,
    source         text NOT NULL CHECK (source IN ('self', 'admin')),
    recorded_by    text NOT NULL,
    decided_at     timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, purpose, policy_version) REFERENCES consent_policies (tenant_id, purpose, version)
);
CREATE INDEX consent_decisions_person ON consent_decisions (tenant_id, user_id, purpose, decided_at);

CREATE FUNCTION consent_decisions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id OR NEW.tenant_id IS DISTINCT FROM OLD.tenant_id
       OR NEW.purpose IS DISTINCT FROM OLD.purpose OR NEW.policy_version IS DISTINCT FROM OLD.policy_version
       OR NEW.granted IS DISTINCT FROM OLD.granted OR NEW.source IS DISTINCT FROM OLD.source
       OR NEW.decided_at IS DISTINCT FROM OLD.decided_at THEN
        RAISE EXCEPTION 'consent decisions are append-only: only erasure''s pseudonym may replace the person';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER consent_decisions_append_only BEFORE UPDATE ON consent_decisions
    FOR EACH ROW EXECUTE FUNCTION consent_decisions_append_only();

-- The advisory lock keys that serialise consent decisions with ingestion:
-- a decision holds its person's key exclusively, an ingestion every
-- person's key of its batch shared (and its institution's ingest key
-- shared, which the export's barrier takes exclusively).
CREATE FUNCTION consent_lock_key(tenant uuid, person uuid) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT hashtextextended('telemetry.consent:' || tenant::text || ':' || person::text, 0) $$;
CREATE FUNCTION ingest_lock_key(tenant uuid) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT hashtextextended('telemetry.ingest:' || tenant::text, 0) $$;

-- Statements, immutable: the statement as received (normalised) and the
-- columns read by rollups, exports and lists. Partitioned by the day they
-- were stored (UTC), so that retention drops partitions.
CREATE TABLE statements (
    tenant_id      uuid NOT NULL,
    stored_at      timestamptz NOT NULL,
    id             uuid NOT NULL,
    user_id        uuid NOT NULL,
    occurred_at    timestamptz NOT NULL,
    verb           text NOT NULL,
    object_id      text NOT NULL,
    object_type    text,
    course_id      uuid,
    cohort_id      uuid,
    score_scaled   double precision,
    success        boolean,
    completion     boolean,
    duration_ms    bigint,
    purpose        text NOT NULL,
    policy_version integer NOT NULL,
    consent_id     uuid,
    source         text NOT NULL,
    raw            jsonb NOT NULL,
    PRIMARY KEY (tenant_id, stored_at, id)
) PARTITION BY RANGE (stored_at);
CREATE INDEX statements_person ON statements (tenant_id, user_id, stored_at);
CREATE INDEX statements_occurred ON statements (tenant_id, occurred_at) INCLUDE (user_id);
COMMENT ON COLUMN statements.consent_id IS 'The consent decision the statement was admitted under; NULL: the institution''s default.';

-- The statement IDs an institution has stored, with the SHA-256 of each
-- statement's content: the ON CONFLICT target of ingestion. A unique index
-- of the partitioned table would have to include stored_at, and a replay
-- arrives on a later day.
CREATE TABLE statement_ids (
    tenant_id uuid NOT NULL,
    id        uuid NOT NULL,
    sha256    bytea NOT NULL,
    stored_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX statement_ids_stored ON statement_ids (tenant_id, stored_at);

-- Daily partitions, made by the owner on the plugin's behalf (the plugin's
-- role has no DDL), with the row-level security the kernel puts on every
-- table with a tenant_id.
CREATE FUNCTION ensure_statement_partitions(first_day date, days integer) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    d    date;
    name text;
    made integer := 0;
BEGIN
    IF days < 1 OR days > 62 THEN
        RAISE EXCEPTION 'days must be between 1 and 62';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('telemetry.partitions', 0));
    FOR i IN 0 .. days - 1 LOOP
        d := first_day + i;
        name := 'statements_' || to_char(d, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(name) IS NOT NULL;
        EXECUTE format('CREATE TABLE %I PARTITION OF statements FOR VALUES FROM (%L) TO (%L)',
            name, (d::timestamp AT TIME ZONE 'UTC'), ((d + 1)::timestamp AT TIME ZONE 'UTC'));
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', name);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', name);
        EXECUTE format($p$CREATE POLICY edulure_tenant_isolation ON %I AS RESTRICTIVE
            USING (tenant_id = NULLIF(current_setting('edulure.tenant_id', true), '')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting('edulure.tenant_id', true), '')::uuid)$p$, name);
        EXECUTE format('CREATE POLICY edulure_tenant_isolation_base ON %I USING (true) WITH CHECK (true)', name);
        made := made + 1;
    END LOOP;
    RETURN made;
END $$;

-- Retention: drops the partitions of days before the cutoff.
CREATE FUNCTION drop_statement_partitions(before date) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    part    record;
    dropped integer := 0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('telemetry.partitions', 0));
    FOR part IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'statements'::regclass AND c.relname ~ '^statements_[0-9]{8}$'
    LOOP
        CONTINUE WHEN to_date(substr(part.relname, 12), 'YYYYMMDD') >= before;
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END $$;

SELECT ensure_statement_partitions((now() AT TIME ZONE 'UTC')::date - 1, 3);

-- Hours (of occurrence) whose rollups need recomputing: ingestion and
-- erasure add rows, the rollup job takes them.
CREATE TABLE rollup_queue (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id uuid NOT NULL,
    hour      timestamptz NOT NULL
);
CREATE INDEX rollup_queue_tenant ON rollup_queue (tenant_id, id);

CREATE TABLE rollup_verbs (
    tenant_id  uuid NOT NULL,
    hour       timestamptz NOT NULL,
    verb       text NOT NULL,
    statements bigint NOT NULL,
    PRIMARY KEY (tenant_id, hour, verb)
);

CREATE TABLE rollup_courses (
    tenant_id          uuid NOT NULL,
    hour               timestamptz NOT NULL,
    course_id          uuid NOT NULL,
    cohort_id          uuid NOT NULL, -- the nil UUID: no cohort
    lesson_completions bigint NOT NULL,
    course_completions bigint NOT NULL,
    time_spent_ms      bigint NOT NULL,
    statements         bigint NOT NULL,
    PRIMARY KEY (tenant_id, hour, course_id, cohort_id)
);

-- rollup_courses summed per day (UTC), recomputed with the hours: a range
-- of whole days is read from here, only its edges from the hours.
CREATE TABLE rollup_courses_daily (
    tenant_id          uuid NOT NULL,
    day                date NOT NULL,
    course_id          uuid NOT NULL,
    cohort_id          uuid NOT NULL,
    lesson_completions bigint NOT NULL,
    course_completions bigint NOT NULL,
    time_spent_ms      bigint NOT NULL,
    statements         bigint NOT NULL,
    PRIMARY KEY (tenant_id, day, course_id, cohort_id)
);

CREATE TABLE rollup_scores (
    tenant_id uuid NOT NULL,
    hour      timestamptz NOT NULL,
    course_id uuid NOT NULL, -- the nil UUID: no course
    object_id text NOT NULL,
    bucket    smallint NOT NULL CHECK (bucket BETWEEN 0 AND 9),
    attempts  bigint NOT NULL,
    PRIMARY KEY (tenant_id, hour, course_id, object_id, bucket)
);

CREATE TABLE rollup_active (
    tenant_id  uuid NOT NULL,
    day        date NOT NULL,
    learners   bigint NOT NULL,
    statements bigint NOT NULL,
    PRIMARY KEY (tenant_id, day)
);

-- Exports: one row per exported hour (of storage), the people each holds
-- (so that an erasure finds the exports to rewrite), and the rewrites.
CREATE TABLE exports (
    tenant_id     uuid NOT NULL,
    hour          timestamptz NOT NULL,
    statements    bigint NOT NULL,
    bytes         bigint NOT NULL,
    parts         jsonb NOT NULL,
    manifest_sha  text NOT NULL CHECK (manifest_sha ~ '^[0-9a-f]{64}$'),
    exported_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, hour)
);

CREATE TABLE export_subjects (
    tenant_id uuid NOT NULL,
    hour      timestamptz NOT NULL,
    user_id   uuid NOT NULL,
    PRIMARY KEY (tenant_id, hour, user_id)
);
CREATE INDEX export_subjects_person ON export_subjects (tenant_id, user_id);

CREATE TABLE export_tombstones (
    tenant_id    uuid NOT NULL,
    hour         timestamptz NOT NULL,
    seq          integer NOT NULL,
    rewritten_at timestamptz NOT NULL,
    reason       text NOT NULL CHECK (reason IN ('erasure')),
    removed      bigint NOT NULL,
    previous     jsonb NOT NULL,
    PRIMARY KEY (tenant_id, hour, seq)
);
