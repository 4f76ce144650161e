-- Each institution's choice of plugins. No row: the plugin's
-- enabled_by_default from plugins.hcl applies.
CREATE TABLE kernel.tenant_plugins (
    tenant_id  uuid NOT NULL REFERENCES kernel.tenants (id) ON DELETE CASCADE,
    plugin     text NOT NULL CHECK (plugin ~ '^[a-z][a-z0-9_]{1,30}$'),
    enabled    boolean NOT NULL,
    config     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(config) = 'object'),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid,
    PRIMARY KEY (tenant_id, plugin)
);
