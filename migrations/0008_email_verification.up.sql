-- Email verification. An account's address is verified once its owner has
-- shown they read mail sent to it: a verification link, an invitation or a
-- password reset. Until then the account may not be given roles or create
-- API keys (docs/security.md).
ALTER TABLE kernel.users ADD COLUMN email_verified_at timestamptz;

-- Accounts from before this migration: an operator's, one made at the
-- console (edulure user-create, audited as the system), and one that
-- accepted an invitation sent to its address count as verified. An account
-- made by sign-up alone stays unverified until its owner verifies it.
UPDATE kernel.users u SET email_verified_at = u.created_at
WHERE u.is_operator
   OR EXISTS (SELECT 1 FROM kernel.invitations i WHERE i.accepted_by = u.id AND lower(i.email) = lower(u.email))
   OR EXISTS (SELECT 1 FROM kernel.audit_log a WHERE a.action = 'identity.user.created' AND a.actor_type = 'system' AND a.target = u.id::text);

-- Verification tokens: single use, expiring; only their SHA-256 is kept
-- (the token itself goes to the address, as an event for the messaging
-- plugin). A newer token voids the older ones.
CREATE TABLE kernel.email_verifications (
    token_hash bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES kernel.users ON DELETE CASCADE,
    email      text NOT NULL,          -- the address the token was sent to
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX email_verifications_user_idx ON kernel.email_verifications (user_id) WHERE used_at IS NULL;
