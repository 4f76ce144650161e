-- What the plugin received: one row per event handled (deduplicated by the
-- SDK's inbox), with when the handler was entered.
CREATE TABLE received (
    event_id   uuid PRIMARY KEY,
    type       text NOT NULL,
    tenant     text NOT NULL,
    attempt    integer NOT NULL,
    sent_ns    bigint,            -- data.sent_ns of probe.ping.v1: just before the publishing commit
    entered_ns bigint NOT NULL    -- when the handler was entered
);

-- Every job attempt the plugin ran.
CREATE TABLE job_log (
    run_id       uuid NOT NULL,
    attempt      integer NOT NULL,
    job          text NOT NULL,
    tenant       text NOT NULL,
    trigger      text NOT NULL,
    scheduled_at timestamptz NOT NULL,
    ran_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, attempt)
);
