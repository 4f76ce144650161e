-- Wrong second factors (TOTP or recovery codes) counted per account, across
-- login challenges and replicas: the tenth in a row locks two-factor
-- sign-in until mfa_locked_until, for longer with each further failure.
-- A right code clears the count.
ALTER TABLE kernel.users
    ADD COLUMN mfa_failures     integer NOT NULL DEFAULT 0,
    ADD COLUMN mfa_locked_until timestamptz;
