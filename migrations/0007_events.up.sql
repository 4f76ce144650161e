-- Events and jobs. Every outbox (the kernel's and each plugin's) is drained
-- by the relay into the event log below, which fans each event out into one
-- delivery per subscribed plugin that the event's institution has enabled.

ALTER TABLE kernel.outbox ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX outbox_seq ON kernel.outbox (seq);

-- The event log, in relay order.
CREATE TABLE kernel.events (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          uuid NOT NULL UNIQUE,       -- UUIDv7 given by the publisher
    type        text NOT NULL,
    source      text NOT NULL,              -- "kernel" or the publishing plugin
    tenant_id   uuid,                       -- NULL: a platform event
    actor       text NOT NULL DEFAULT '',
    request_id  text NOT NULL DEFAULT '',
    data        jsonb NOT NULL,
    occurred_at timestamptz NOT NULL,
    relayed_at  timestamptz NOT NULL DEFAULT now(),
    rejected    text                        -- why the relay refused it (undeclared type, data off its schema)
);
CREATE INDEX events_tenant ON kernel.events (tenant_id, seq);
CREATE INDEX events_type ON kernel.events (type, seq);

-- One row per (event, subscriber).
CREATE TABLE kernel.deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_seq       bigint NOT NULL REFERENCES kernel.events (seq) ON DELETE CASCADE,
    subscriber      text NOT NULL,
    tenant_id       uuid,
    ordered         boolean NOT NULL DEFAULT false,
    max_attempts    integer NOT NULL CHECK (max_attempts > 0),
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead', 'skipped')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (event_seq, subscriber)
);
CREATE INDEX deliveries_pending ON kernel.deliveries (subscriber, id) WHERE status = 'pending';
CREATE INDEX deliveries_pending_tenant ON kernel.deliveries (subscriber, tenant_id, id) WHERE status = 'pending' AND ordered;
CREATE INDEX deliveries_tenant ON kernel.deliveries (tenant_id, id);
CREATE INDEX deliveries_dead ON kernel.deliveries (subscriber, id) WHERE status = 'dead';

-- Job runs: one row per run (a scheduled tick for one institution or the
-- platform, an event, or a manual request), whatever its attempts. River
-- (schema river) queues and retries them; this is their history.
CREATE TABLE kernel.job_runs (
    id            uuid PRIMARY KEY,
    plugin        text NOT NULL,
    job           text NOT NULL,
    tenant_id     uuid,
    trigger       text NOT NULL CHECK (trigger IN ('schedule', 'event', 'manual')),
    scheduled_at  timestamptz NOT NULL,
    event_id      uuid,
    requested_by  text NOT NULL DEFAULT '',
    args          jsonb NOT NULL DEFAULT '{}',
    status        text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'retrying', 'succeeded', 'failed', 'skipped')),
    attempts      integer NOT NULL DEFAULT 0,
    max_attempts  integer NOT NULL,
    timeout_ms    bigint NOT NULL,
    started_at    timestamptz,
    finished_at   timestamptz,
    last_error    text,
    output        text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- A scheduled tick runs once per institution (or once for the platform),
-- however many replicas scheduled it; an event triggers a job once.
CREATE UNIQUE INDEX job_runs_tick ON kernel.job_runs (plugin, job, COALESCE(tenant_id, '00000000-0000-0000-0000-000000000000'), scheduled_at) WHERE trigger = 'schedule';
CREATE UNIQUE INDEX job_runs_event ON kernel.job_runs (plugin, job, event_id) WHERE trigger = 'event';
CREATE INDEX job_runs_recent ON kernel.job_runs (plugin, job, created_at DESC);
CREATE INDEX job_runs_tenant ON kernel.job_runs (tenant_id, created_at DESC);

CREATE TABLE kernel.job_attempts (
    run_id      uuid NOT NULL REFERENCES kernel.job_runs (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    outcome     text NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'succeeded', 'failed', 'timed_out')),
    error       text,
    PRIMARY KEY (run_id, attempt)
);
