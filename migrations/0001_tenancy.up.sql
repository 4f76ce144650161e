-- Institutions (tenants). Created by platform operators.
CREATE TABLE kernel.tenants (
    id                 uuid PRIMARY KEY,
    slug               text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    self_signup        boolean NOT NULL DEFAULT false,
    mfa_required_roles text[] NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
