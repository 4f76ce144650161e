CREATE TABLE items (
    id        bigserial PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name      text NOT NULL
);
