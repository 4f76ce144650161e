-- Cohorts, enrolments and progress.

-- A cohort is a scheduled run of a course, with an optional seat limit.
CREATE TABLE cohorts (
    tenant_id  uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    course_id  uuid        NOT NULL,
    name       text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    -- NULL: no limit.
    seat_limit integer     CHECK (seat_limit >= 1),
    created_by uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at),
    FOREIGN KEY (tenant_id, course_id) REFERENCES courses (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (tenant_id, id)
);
CREATE INDEX cohorts_course ON cohorts (course_id, starts_at);

-- An enrolment of a learner in a course, in one of its cohorts or none.
-- active: learning; waitlisted: waiting for a seat in a full cohort;
-- completed: every required lesson and assessment done; withdrawn: left.
CREATE TABLE enrolments (
    tenant_id     uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    course_id     uuid        NOT NULL,
    cohort_id     uuid,
    user_id       uuid        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('active', 'waitlisted', 'completed', 'withdrawn')),
    -- self, admin (by someone holding courses.enrolment.manage) or order
    -- (commerce.order.paid.v1).
    source        text        NOT NULL CHECK (source IN ('self', 'admin', 'order')),
    order_id      text,
    enrolled_by   text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- When the learner took a seat (NULL while waitlisted).
    activated_at  timestamptz,
    waitlisted_at timestamptz,
    completed_at  timestamptz,
    withdrawn_at  timestamptz,
    FOREIGN KEY (tenant_id, course_id) REFERENCES courses (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, cohort_id) REFERENCES cohorts (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (tenant_id, id)
);
-- One live enrolment per learner and course: enrolling twice is refused.
CREATE UNIQUE INDEX enrolments_one_live ON enrolments (course_id, user_id) WHERE status <> 'withdrawn';
-- The learner's dashboard: their enrolments, newest first.
CREATE INDEX enrolments_user ON enrolments (tenant_id, user_id, created_at DESC, id DESC);
-- Seats taken and the waitlist, in order, per cohort.
CREATE INDEX enrolments_cohort ON enrolments (cohort_id, status, waitlisted_at, id);
CREATE INDEX enrolments_course ON enrolments (tenant_id, course_id, status, created_at DESC, id DESC);
-- An order enrols once, however often its event arrives.
CREATE UNIQUE INDEX enrolments_order ON enrolments (order_id, course_id) WHERE order_id IS NOT NULL;

-- Per lesson of an enrolment: time spent and completion.
CREATE TABLE lesson_progress (
    tenant_id          uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    enrolment_id       uuid        NOT NULL,
    lesson_id          uuid        NOT NULL,
    time_spent_seconds integer     NOT NULL DEFAULT 0 CHECK (time_spent_seconds >= 0),
    completed_at       timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (enrolment_id, lesson_id),
    FOREIGN KEY (tenant_id, enrolment_id) REFERENCES enrolments (tenant_id, id) ON DELETE CASCADE
);

-- The progress snapshot of an enrolment, kept current in the transaction
-- of every change that moves it (a completed lesson, a passed quiz, a
-- graded assignment): the dashboard reads it without counting.
CREATE TABLE course_progress (
    tenant_id            uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    enrolment_id         uuid        PRIMARY KEY,
    course_id            uuid        NOT NULL,
    user_id              uuid        NOT NULL,
    version              integer     NOT NULL,
    lessons_completed    integer     NOT NULL DEFAULT 0,
    lessons_required     integer     NOT NULL DEFAULT 0,
    assessments_passed   integer     NOT NULL DEFAULT 0,
    assessments_required integer     NOT NULL DEFAULT 0,
    percent              integer     NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
    time_spent_seconds   bigint      NOT NULL DEFAULT 0,
    last_activity_at     timestamptz,
    completed_at         timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, enrolment_id) REFERENCES enrolments (tenant_id, id) ON DELETE CASCADE
);
