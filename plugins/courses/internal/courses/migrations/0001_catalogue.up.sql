-- Catalogue and authoring. Every table has a tenant_id column, so the kernel
-- puts it under forced row-level security: a transaction sees and writes only
-- its institution's rows. tenant_id defaults to the transaction's institution.
--
-- The authoring tables (courses, modules, lessons) are the draft. Publishing
-- copies the draft into course_versions; learners read the latest published
-- version, so an instructor's edits reach them only at the next publish.

CREATE TABLE courses (
    tenant_id          uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    title              text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    summary            text        NOT NULL DEFAULT '' CHECK (char_length(summary) <= 2000),
    -- draft: never published; published: learners see published_version;
    -- unpublished: hidden from the catalogue, closed to new enrolments.
    status             text        NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'published', 'unpublished')),
    -- NULL: the institution's configuration (self_enrolment) decides.
    self_enrolment     boolean,
    -- Percentage a quiz or assignment needs unless it sets its own; NULL:
    -- the institution's default_pass_mark.
    pass_mark          integer     CHECK (pass_mark BETWEEN 0 AND 100),
    published_version  integer,
    -- Bumped by every change to the draft: lets a client edit safely
    -- (If-Match) and tells a preview whether it is current.
    draft_revision     integer     NOT NULL DEFAULT 1,
    created_by         uuid        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    published_at       timestamptz,
    UNIQUE (tenant_id, id)
);
-- Catalogue listing: newest first per status, cursor (created_at, id).
CREATE INDEX courses_list ON courses (tenant_id, status, created_at DESC, id DESC);
-- Text search on titles (filter q).
CREATE INDEX courses_title ON courses USING gin (to_tsvector('simple', title));

-- Instructors assigned to a course: they (and tenant admins) may change it,
-- schedule its cohorts and grade its work.
CREATE TABLE course_instructors (
    tenant_id  uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    course_id  uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    added_by   uuid        NOT NULL,
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (course_id, user_id),
    FOREIGN KEY (tenant_id, course_id) REFERENCES courses (tenant_id, id) ON DELETE CASCADE
);
-- Filter instructor=: the courses a person teaches.
CREATE INDEX course_instructors_user ON course_instructors (tenant_id, user_id, course_id);

CREATE TABLE modules (
    tenant_id  uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    course_id  uuid        NOT NULL,
    title      text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    position   integer     NOT NULL CHECK (position >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, course_id) REFERENCES courses (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (tenant_id, id)
);
CREATE INDEX modules_course ON modules (course_id, position);

CREATE TABLE lessons (
    tenant_id         uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    course_id         uuid        NOT NULL,
    module_id         uuid        NOT NULL,
    title             text        NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    -- Rich text: body_format says how to render body.
    body              text        NOT NULL DEFAULT '' CHECK (char_length(body) <= 200000),
    body_format       text        NOT NULL DEFAULT 'markdown' CHECK (body_format IN ('markdown', 'html', 'plain')),
    -- References to assets: [{"url", "type" (MIME), "size_bytes", "title"}].
    assets            jsonb       NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(assets) = 'array'),
    estimated_minutes integer     NOT NULL DEFAULT 0 CHECK (estimated_minutes BETWEEN 0 AND 10000),
    -- Required lessons count towards course completion.
    required          boolean     NOT NULL DEFAULT true,
    position          integer     NOT NULL CHECK (position >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, course_id) REFERENCES courses (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, module_id) REFERENCES modules (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (tenant_id, id)
);
CREATE INDEX lessons_module ON lessons (module_id, position);
CREATE INDEX lessons_course ON lessons (course_id);

-- Published versions: the draft as it was at each publish, in full
-- (modules, lessons, prerequisites, assessments); learners read the latest.
CREATE TABLE course_versions (
    tenant_id    uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    course_id    uuid        NOT NULL,
    version      integer     NOT NULL CHECK (version >= 1),
    content      jsonb       NOT NULL,
    note         text        NOT NULL DEFAULT '' CHECK (char_length(note) <= 500),
    published_by uuid        NOT NULL,
    published_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (course_id, version),
    FOREIGN KEY (tenant_id, course_id) REFERENCES courses (tenant_id, id) ON DELETE CASCADE
);

-- Prerequisites: a course may require other courses to be completed first,
-- a lesson other lessons of its course. The plugin refuses a cycle.
CREATE TABLE course_prerequisites (
    tenant_id          uuid NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    course_id          uuid NOT NULL,
    requires_course_id uuid NOT NULL,
    PRIMARY KEY (course_id, requires_course_id),
    CHECK (course_id <> requires_course_id),
    FOREIGN KEY (tenant_id, course_id) REFERENCES courses (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, requires_course_id) REFERENCES courses (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX course_prerequisites_required ON course_prerequisites (requires_course_id);

CREATE TABLE lesson_prerequisites (
    tenant_id          uuid NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    lesson_id          uuid NOT NULL,
    requires_lesson_id uuid NOT NULL,
    PRIMARY KEY (lesson_id, requires_lesson_id),
    CHECK (lesson_id <> requires_lesson_id),
    FOREIGN KEY (tenant_id, lesson_id) REFERENCES lessons (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, requires_lesson_id) REFERENCES lessons (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX lesson_prerequisites_required ON lesson_prerequisites (requires_lesson_id);
