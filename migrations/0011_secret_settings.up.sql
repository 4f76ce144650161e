-- Each institution's secret plugin settings (config fields the plugin's
-- schema marks writeOnly), one row per setting, sealed with AES-256-GCM
-- under EDULURE_SECRET_KEY; the associated data binds each value to its
-- institution, plugin and setting. kernel.tenant_plugins.config never holds
-- them.
CREATE TABLE kernel.tenant_plugin_secrets (
    tenant_id  uuid NOT NULL,
    plugin     text NOT NULL,
    name       text NOT NULL CHECK (name <> ''),
    sealed     bytea NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, plugin, name),
    FOREIGN KEY (tenant_id, plugin) REFERENCES kernel.tenant_plugins (tenant_id, plugin) ON DELETE CASCADE
);
