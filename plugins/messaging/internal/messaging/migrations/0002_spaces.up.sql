-- Spaces and what is posted in them. Every foreign key includes tenant_id,
-- so no row can point at another institution's.

CREATE TABLE spaces (
    tenant_id  uuid NOT NULL,
    id         uuid NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('institution', 'course', 'cohort')),
    course_id  uuid,
    cohort_id  uuid,
    title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CHECK ((kind = 'institution') = (course_id IS NULL)),
    CHECK ((kind = 'cohort') = (cohort_id IS NOT NULL))
);
CREATE UNIQUE INDEX spaces_institution ON spaces (tenant_id) WHERE kind = 'institution';
CREATE UNIQUE INDEX spaces_course ON spaces (tenant_id, course_id) WHERE kind = 'course';
CREATE UNIQUE INDEX spaces_cohort ON spaces (tenant_id, cohort_id) WHERE kind = 'cohort';

-- Who belongs to a course or cohort space, and why: enrolled (the courses
-- plugin's enrolment events), added by hand, or a moderator (each a
-- member). The institution's space has every active member of the
-- institution; only its moderators and hand-added rows are here.
CREATE TABLE space_members (
    tenant_id uuid NOT NULL,
    space_id  uuid NOT NULL,
    user_id   uuid NOT NULL,
    enrolled  boolean NOT NULL DEFAULT false,
    manual    boolean NOT NULL DEFAULT false,
    moderator boolean NOT NULL DEFAULT false,
    added_by  uuid,
    added_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, space_id, user_id),
    FOREIGN KEY (tenant_id, space_id) REFERENCES spaces (tenant_id, id) ON DELETE CASCADE,
    CHECK (enrolled OR manual OR moderator)
);
CREATE INDEX space_members_user ON space_members (tenant_id, user_id);

CREATE TABLE posts (
    tenant_id      uuid NOT NULL,
    id             uuid NOT NULL,
    space_id       uuid NOT NULL,
    author_id      uuid NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('post', 'announcement')),
    body           text NOT NULL,
    body_text      text NOT NULL,
    revision       int NOT NULL DEFAULT 1,
    edited_at      timestamptz,
    pinned_at      timestamptz,
    locked_at      timestamptz,
    hidden_at      timestamptz,
    hidden_by      uuid,
    hidden_reason  text CHECK (length(hidden_reason) <= 500),
    deleted_at     timestamptz,
    comment_count  int NOT NULL DEFAULT 0,
    reaction_count int NOT NULL DEFAULT 0,
    open_reports   int NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, space_id) REFERENCES spaces (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX posts_feed ON posts (tenant_id, space_id, created_at DESC, id DESC);
CREATE INDEX posts_author ON posts (tenant_id, author_id, created_at DESC);

CREATE TABLE comments (
    tenant_id      uuid NOT NULL,
    id             uuid NOT NULL,
    post_id        uuid NOT NULL,
    parent_id      uuid,
    depth          int NOT NULL DEFAULT 0 CHECK (depth BETWEEN 0 AND 8),
    author_id      uuid NOT NULL,
    body           text NOT NULL,
    body_text      text NOT NULL,
    revision       int NOT NULL DEFAULT 1,
    edited_at      timestamptz,
    hidden_at      timestamptz,
    hidden_by      uuid,
    hidden_reason  text CHECK (length(hidden_reason) <= 500),
    deleted_at     timestamptz,
    reaction_count int NOT NULL DEFAULT 0,
    open_reports   int NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, post_id) REFERENCES posts (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, parent_id) REFERENCES comments (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX comments_post ON comments (tenant_id, post_id, created_at, id);
CREATE INDEX comments_author ON comments (tenant_id, author_id, created_at DESC);

-- Each edit keeps the text it replaced (posts and comments).
CREATE TABLE revisions (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL,
    target_type text NOT NULL CHECK (target_type IN ('post', 'comment')),
    target_id   uuid NOT NULL,
    revision    int NOT NULL,
    body        text NOT NULL,
    edited_by   uuid NOT NULL,
    edited_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, target_id, revision)
);

-- One reaction per person per emoji on a post or a comment. post_id is the
-- thread's post, for the feed's engagement velocity.
CREATE TABLE reactions (
    tenant_id   uuid NOT NULL,
    target_type text NOT NULL CHECK (target_type IN ('post', 'comment')),
    target_id   uuid NOT NULL,
    post_id     uuid NOT NULL,
    user_id     uuid NOT NULL,
    emoji       text NOT NULL CHECK (length(emoji) BETWEEN 1 AND 32),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, target_id, user_id, emoji),
    FOREIGN KEY (tenant_id, post_id) REFERENCES posts (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX reactions_post ON reactions (tenant_id, post_id, created_at);
CREATE INDEX reactions_user ON reactions (tenant_id, user_id);

CREATE TABLE polls (
    tenant_id uuid NOT NULL,
    post_id   uuid NOT NULL,
    question  text NOT NULL,
    options   jsonb NOT NULL,
    multiple  boolean NOT NULL DEFAULT false,
    closes_at timestamptz,
    PRIMARY KEY (tenant_id, post_id),
    FOREIGN KEY (tenant_id, post_id) REFERENCES posts (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE poll_votes (
    tenant_id uuid NOT NULL,
    post_id   uuid NOT NULL,
    option_id text NOT NULL CHECK (option_id ~ '^[a-z0-9]{1,8}$'),
    user_id   uuid NOT NULL,
    voted_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, post_id, user_id, option_id),
    FOREIGN KEY (tenant_id, post_id) REFERENCES polls (tenant_id, post_id) ON DELETE CASCADE
);

-- Files uploaded through a signed URL under attachments/<uploader>/<id>,
-- then attached to one post.
CREATE TABLE attachments (
    tenant_id    uuid NOT NULL,
    id           uuid NOT NULL,
    space_id     uuid NOT NULL,
    post_id      uuid,
    uploader_id  uuid NOT NULL,
    object_key   text NOT NULL CHECK (length(object_key) <= 512),
    filename     text NOT NULL CHECK (length(filename) BETWEEN 1 AND 200),
    content_type text NOT NULL CHECK (length(content_type) <= 100),
    size_bytes   bigint,
    sha256       text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, space_id) REFERENCES spaces (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, post_id) REFERENCES posts (tenant_id, id) ON DELETE SET NULL (post_id)
);
CREATE INDEX attachments_post ON attachments (tenant_id, post_id);

-- Who a post or comment mentions (each gets a notification).
CREATE TABLE mentions (
    tenant_id   uuid NOT NULL,
    target_type text NOT NULL CHECK (target_type IN ('post', 'comment')),
    target_id   uuid NOT NULL,
    user_id     uuid NOT NULL,
    PRIMARY KEY (tenant_id, target_id, user_id)
);

-- Reports of a post or comment; one per reporter and target.
CREATE TABLE reports (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL,
    space_id    uuid NOT NULL,
    post_id     uuid NOT NULL,
    target_type text NOT NULL CHECK (target_type IN ('post', 'comment')),
    target_id   uuid NOT NULL,
    reporter_id uuid NOT NULL,
    reason      text NOT NULL,
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'actioned', 'dismissed')),
    created_at  timestamptz NOT NULL,
    resolved_at timestamptz,
    resolved_by uuid,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, target_id, reporter_id),
    FOREIGN KEY (tenant_id, post_id) REFERENCES posts (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX reports_open ON reports (tenant_id, space_id, created_at) WHERE status = 'open';

-- The order of a ranked feed, fixed when its first page was asked for, so
-- that the pages after it neither repeat nor skip a post while new ones
-- arrive and scores move. Removed after an hour.
CREATE TABLE feed_snapshots (
    tenant_id  uuid NOT NULL,
    id         uuid NOT NULL,
    user_id    uuid NOT NULL,
    space_id   uuid NOT NULL,
    post_ids   uuid[] NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
