-- The audit log's filters (GET /api/v1/tenant/audit?action=&actor_id=&target=):
-- an action, an actor or a target found without reading the whole chain.
-- The target index also serves the former-member check of exports and
-- erasures (a person named as the target of an institution's entries).
CREATE INDEX audit_log_chain_action ON kernel.audit_log (chain, action, id);
CREATE INDEX audit_personal_actor ON kernel.audit_personal (chain, actor_id, entry_id) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_personal_target ON kernel.audit_personal (chain, target, entry_id) WHERE target IS NOT NULL;
