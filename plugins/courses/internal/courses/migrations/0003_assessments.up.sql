-- Quizzes, rubrics, assignments, submissions, grades and appeals.

-- A quiz: auto-graded single and multiple choice questions.
-- questions: [{"id", "prompt", "kind": "single"|"multiple", "points",
--              "options": [{"id", "text"}], "correct": [option ids]}]
CREATE TABLE quizzes (
    tenant_id    uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    course_id    uuid        NOT NULL,
    -- The lesson the quiz belongs to (inline), or NULL for a course quiz.
    lesson_id    uuid,
    title        text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    questions    jsonb       NOT NULL CHECK (jsonb_typeof(questions) = 'array'),
    -- Percentage to pass; NULL: the course's, then the institution's.
    pass_mark    integer     CHECK (pass_mark BETWEEN 0 AND 100),
    -- NULL: unlimited.
    max_attempts integer     CHECK (max_attempts >= 1),
    required     boolean     NOT NULL DEFAULT true,
    created_by   uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, course_id) REFERENCES courses (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, lesson_id) REFERENCES lessons (tenant_id, id) ON DELETE SET NULL (lesson_id),
    UNIQUE (tenant_id, id)
);
CREATE INDEX quizzes_course ON quizzes (course_id, created_at);

CREATE TABLE quiz_attempts (
    tenant_id    uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    quiz_id      uuid        NOT NULL,
    enrolment_id uuid        NOT NULL,
    user_id      uuid        NOT NULL,
    attempt      integer     NOT NULL CHECK (attempt >= 1),
    answers      jsonb       NOT NULL,
    score        integer     NOT NULL,
    max_score    integer     NOT NULL,
    percent      integer     NOT NULL CHECK (percent BETWEEN 0 AND 100),
    passed       boolean     NOT NULL,
    submitted_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (quiz_id, enrolment_id, attempt),
    FOREIGN KEY (tenant_id, quiz_id) REFERENCES quizzes (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, enrolment_id) REFERENCES enrolments (tenant_id, id) ON DELETE CASCADE
);
-- Quiz mastery for an enrolment (recommendations, completion).
CREATE INDEX quiz_attempts_enrolment ON quiz_attempts (enrolment_id, quiz_id, passed);

-- A rubric: criteria, each with levels worth points.
-- criteria: [{"id", "title", "levels": [{"id", "title", "points"}]}]
CREATE TABLE rubrics (
    tenant_id  uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    course_id  uuid        NOT NULL,
    title      text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    criteria   jsonb       NOT NULL CHECK (jsonb_typeof(criteria) = 'array'),
    created_by uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, course_id) REFERENCES courses (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (tenant_id, id)
);
CREATE INDEX rubrics_course ON rubrics (course_id);

CREATE TABLE assignments (
    tenant_id            uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id                   uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    course_id            uuid        NOT NULL,
    lesson_id            uuid,
    rubric_id            uuid        NOT NULL,
    title                text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    instructions         text        NOT NULL DEFAULT '' CHECK (char_length(instructions) <= 50000),
    due_at               timestamptz NOT NULL,
    -- none: a submission after due_at is refused; penalty: accepted, losing
    -- late_penalty_percent of the grade per started day late, up to
    -- late_cutoff_days (then refused).
    late_policy          text        NOT NULL DEFAULT 'none' CHECK (late_policy IN ('none', 'penalty')),
    late_penalty_percent integer     NOT NULL DEFAULT 0 CHECK (late_penalty_percent BETWEEN 0 AND 100),
    late_cutoff_days     integer     NOT NULL DEFAULT 0 CHECK (late_cutoff_days BETWEEN 0 AND 365),
    pass_mark            integer     CHECK (pass_mark BETWEEN 0 AND 100),
    required             boolean     NOT NULL DEFAULT true,
    created_by           uuid        NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, course_id) REFERENCES courses (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, lesson_id) REFERENCES lessons (tenant_id, id) ON DELETE SET NULL (lesson_id),
    FOREIGN KEY (tenant_id, rubric_id) REFERENCES rubrics (tenant_id, id),
    UNIQUE (tenant_id, id)
);
CREATE INDEX assignments_course ON assignments (course_id, due_at);

-- A learner's submission to an assignment, and its grade.
-- submitted: waiting for grading; graded; appealed: a grade appeal is open.
CREATE TABLE submissions (
    tenant_id        uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    assignment_id    uuid        NOT NULL,
    course_id        uuid        NOT NULL,
    enrolment_id     uuid        NOT NULL,
    user_id          uuid        NOT NULL,
    body             text        NOT NULL DEFAULT '' CHECK (char_length(body) <= 100000),
    -- [{"url", "type", "size_bytes", "title"}]
    assets           jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(assets) = 'array'),
    submitted_at     timestamptz NOT NULL DEFAULT now(),
    days_late        integer     NOT NULL DEFAULT 0 CHECK (days_late >= 0),
    status           text        NOT NULL DEFAULT 'submitted' CHECK (status IN ('submitted', 'graded', 'appealed')),
    -- The grade: the chosen level per criterion ({criterion id: level id}),
    -- points, the late penalty and the final percentage.
    levels           jsonb,
    score            integer,
    max_score        integer,
    penalty_percent  integer,
    percent          integer     CHECK (percent BETWEEN 0 AND 100),
    passed           boolean,
    feedback         text        CHECK (char_length(feedback) <= 20000),
    graded_by        uuid,
    graded_at        timestamptz,
    UNIQUE (assignment_id, enrolment_id),
    FOREIGN KEY (tenant_id, assignment_id) REFERENCES assignments (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, enrolment_id) REFERENCES enrolments (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (tenant_id, id)
);
-- An instructor's grading backlog: ungraded work per course, oldest first.
CREATE INDEX submissions_backlog ON submissions (tenant_id, status, course_id, submitted_at, id);
CREATE INDEX submissions_user ON submissions (tenant_id, user_id, submitted_at DESC, id DESC);

-- A learner's appeal of a grade, resolved by a reviewer other than the grader.
CREATE TABLE appeals (
    tenant_id     uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    submission_id uuid        NOT NULL,
    course_id     uuid        NOT NULL,
    user_id       uuid        NOT NULL,
    reason        text        NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 5000),
    status        text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'upheld', 'rejected')),
    -- The grade being appealed, as it was.
    original      jsonb       NOT NULL,
    resolution    text        CHECK (char_length(resolution) <= 5000),
    reviewed_by   uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz,
    FOREIGN KEY (tenant_id, submission_id) REFERENCES submissions (tenant_id, id) ON DELETE CASCADE
);
-- At most one open appeal per submission.
CREATE UNIQUE INDEX appeals_open ON appeals (submission_id) WHERE status = 'open';
CREATE INDEX appeals_backlog ON appeals (tenant_id, status, course_id, created_at, id);
