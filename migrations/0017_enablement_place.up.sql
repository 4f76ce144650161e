-- Where an institution last turned a plugin on, as the event log orders it
-- (docs/events.md, "Catch-up"): the ID of that tenancy.plugin.enabled.v1,
-- written with the change, and its seq, written by the relay in the
-- transaction that appends it to the log. A live cursor delivers the
-- institution's events from enabled_seq on and leaves the earlier ones to
-- the catch-up. NULL for enablements made before this migration.
ALTER TABLE kernel.tenant_plugins ADD COLUMN enabled_event uuid, ADD COLUMN enabled_seq bigint;
CREATE INDEX tenant_plugins_enabled_event ON kernel.tenant_plugins (enabled_event) WHERE enabled_event IS NOT NULL;
