-- Notes about a member, for the personal data tests: what they wrote, and
-- who wrote it down.
CREATE TABLE notes (
    id         bigserial PRIMARY KEY,
    tenant_id  uuid NOT NULL,
    user_id    uuid NOT NULL,
    body       text NOT NULL,
    written_by uuid
);
CREATE INDEX notes_user ON notes (tenant_id, user_id);
