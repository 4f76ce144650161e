-- Object storage for plugins (docs/plugins.md, "Object storage"). The
-- bytes live in the bucket of EDULURE_BLOB_URL; the kernel records here
-- what it knows of each plugin object (its size, media type and the
-- SHA-256 it computed while the object streamed in) and the bytes each
-- plugin's objects take, which the plugin's quota in plugins.hcl is
-- checked against. A row is written in the transaction that makes the
-- object visible, so the index and the bucket agree.
CREATE TABLE kernel.blob_objects (
    -- The bucket key: plugins/<plugin>/tenants/<tenant>/<key> or
    -- plugins/<plugin>/platform/<key>. Byte order, for listing by prefix.
    key          text COLLATE "C" PRIMARY KEY,
    plugin       text NOT NULL CHECK (plugin ~ '^[a-z][a-z0-9_]{1,30}$'),
    tenant_id    uuid, -- NULL: the platform scope
    size         bigint NOT NULL CHECK (size >= 0),
    content_type text NOT NULL,
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    modified_at  timestamptz NOT NULL,
    CHECK (starts_with(key, 'plugins/' || plugin || '/'))
);

-- An institution's objects, plugin by plugin (export, offboarding).
CREATE INDEX blob_objects_tenant ON kernel.blob_objects (tenant_id, plugin);

-- Each plugin's usage: the row its commits lock, one at a time.
CREATE TABLE kernel.blob_usage (
    plugin  text PRIMARY KEY CHECK (plugin ~ '^[a-z][a-z0-9_]{1,30}$'),
    bytes   bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    objects bigint NOT NULL DEFAULT 0 CHECK (objects >= 0)
);
