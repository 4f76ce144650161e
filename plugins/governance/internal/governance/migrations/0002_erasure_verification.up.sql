-- An erasure that an export of the person found not empty files its signed
-- receipt as evidence in an incident (docs/governance.md, "Erasure receipts").
ALTER TABLE evidence_items DROP CONSTRAINT evidence_items_kind_check;
ALTER TABLE evidence_items ADD CONSTRAINT evidence_items_kind_check
    CHECK (kind IN ('upload', 'retention_execution', 'access_review', 'billing_anomaly', 'audit_verification', 'erasure_verification'));
