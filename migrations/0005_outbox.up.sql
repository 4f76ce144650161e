-- The kernel's transactional outbox. Events are written in the same
-- transaction as the change that caused them; the relay that delivers them to
-- subscribers reads from here, so nothing written before it exists is lost.
CREATE TABLE kernel.outbox (
    id          uuid PRIMARY KEY,           -- UUIDv7: sortable by time
    type        text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\.v[0-9]+$'),
    tenant_id   uuid,
    actor       text NOT NULL DEFAULT '',
    request_id  text NOT NULL DEFAULT '',
    data        jsonb NOT NULL,
    occurred_at timestamptz NOT NULL DEFAULT now()
);

-- Idempotency-Key records for POSTs that create: the first response is
-- stored and replayed for a retry with the same key and body.
CREATE TABLE kernel.idempotency_keys (
    scope        text NOT NULL,          -- who asked: "user:<id>:<tenant>" or "apikey:<id>"
    key          text NOT NULL,
    method       text NOT NULL,
    path         text NOT NULL,
    request_hash bytea NOT NULL,
    status       integer,                -- NULL while the first request runs
    headers      jsonb,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
