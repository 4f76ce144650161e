-- Certificates, issued by the issue-certificate job when a course completes.
CREATE TABLE certificates (
    tenant_id    uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id           uuid        PRIMARY KEY,
    enrolment_id uuid        NOT NULL UNIQUE,
    course_id    uuid        NOT NULL,
    user_id      uuid        NOT NULL,
    -- The canonical content the hash covers (certificate.go), exactly as
    -- hashed, and its SHA-256 in hex.
    content      text        NOT NULL,
    sha256       text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    issued_at    timestamptz NOT NULL,
    FOREIGN KEY (tenant_id, enrolment_id) REFERENCES enrolments (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX certificates_user ON certificates (tenant_id, user_id, issued_at DESC, id DESC);

-- What the public verification route may read: IDs and hashes only. It has
-- no tenant_id column, so it is outside row-level security, and it holds
-- nothing a caller could not already name.
CREATE TABLE certificate_hashes (
    id      uuid PRIMARY KEY,
    sha256  text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$')
);
