-- data.token of the events that carry one (password resets, invitations):
-- what a messaging plugin would email, as the subscriber receives it.
ALTER TABLE received ADD COLUMN token text;
