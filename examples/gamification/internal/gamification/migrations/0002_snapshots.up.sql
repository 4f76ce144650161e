-- The top of each institution's leaderboard, copied nightly by the job
-- leaderboard-snapshot. tenant_id gives the table row-level security.
CREATE TABLE snapshots (
    tenant_id uuid        NOT NULL,
    -- The job run that took it: the kernel may retry an attempt whose
    -- outcome it did not hear, and the retry replaces its own snapshot.
    run_id    text        NOT NULL,
    taken_at  timestamptz NOT NULL DEFAULT now(),
    size      integer     NOT NULL CHECK (size BETWEEN 1 AND 100),
    entries   jsonb       NOT NULL, -- [{"user_id","points","rank"}], highest first
    PRIMARY KEY (tenant_id, run_id)
);
CREATE INDEX snapshots_latest ON snapshots (tenant_id, taken_at DESC);

-- Awards for a completed lesson name it: a lesson earns a member points
-- once, however often courses.lesson.completed.v1 says it was completed.
ALTER TABLE awards ADD COLUMN lesson_id uuid;
CREATE UNIQUE INDEX awards_lesson ON awards (tenant_id, user_id, lesson_id) WHERE lesson_id IS NOT NULL;
