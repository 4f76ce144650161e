-- Retention asked by an institution (ApplyRetention, class "statements"):
-- the day partitions stored entirely before the cutoff that hold rows of
-- the institution in scope only (edulure.tenant_id, the transaction's
-- row-level security setting), none of them under a hold, are dropped
-- whole; the SDK deletes the institution's other expired rows one batch at
-- a time. A partition that holds another institution's rows is never
-- dropped here. To see those rows the owner lifts FORCE ROW LEVEL SECURITY
-- on the partition inside this transaction (it holds the partition's lock
-- until the end, and puts FORCE back on a partition it keeps).
CREATE FUNCTION drop_tenant_statement_partitions(cutoff timestamptz, held_users uuid[], held_courses uuid[], held_cohorts uuid[])
    RETURNS TABLE (partition text, statements bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    tenant uuid := NULLIF(current_setting('edulure.tenant_id', true), '')::uuid;
    part   record;
    others boolean;
    held   boolean;
    n      bigint;
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'no institution in scope (edulure.tenant_id)';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('telemetry.partitions', 0));
    FOR part IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'statements'::regclass AND c.relname ~ '^statements_[0-9]{8}$'
        ORDER BY c.relname
    LOOP
        -- The partition holds [day, day + 1) UTC: entirely before the cutoff?
        CONTINUE WHEN ((to_date(substr(part.relname, 12), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC') > cutoff;
        EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', part.relname);
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %1$I WHERE tenant_id <> $1),
                               EXISTS (SELECT 1 FROM %1$I WHERE user_id = ANY ($2) OR course_id = ANY ($3) OR cohort_id = ANY ($4)),
                               (SELECT count(*) FROM %1$I)', part.relname)
            INTO others, held, n USING tenant, held_users, held_courses, held_cohorts;
        IF others OR held OR n = 0 THEN
            EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', part.relname);
            CONTINUE;
        END IF;
        EXECUTE format('DROP TABLE %I', part.relname);
        partition := part.relname;
        statements := n;
        RETURN NEXT;
    END LOOP;
END $$;
