-- Every award, as given. Tables with a tenant_id column get forced row-level
-- security from the kernel: a query sees only the current institution's rows.
CREATE TABLE awards (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    points     integer     NOT NULL CHECK (points BETWEEN 1 AND 1000),
    reason     text        NOT NULL DEFAULT '' CHECK (char_length(reason) <= 200),
    awarded_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX awards_user ON awards (tenant_id, user_id, created_at);

-- Each user's running total, kept in the same transaction as the award.
CREATE TABLE totals (
    tenant_id  uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    points     bigint      NOT NULL CHECK (points >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX totals_rank ON totals (tenant_id, points DESC, user_id);
