-- The coverage check of sdk/plugintest cannot tell from a column's name
-- that a JSON document holds people's IDs; the comment says so, and the
-- plugin describes the column in its manifest (personal.go).
COMMENT ON COLUMN snapshots.entries IS 'Personal: the user IDs, points and ranks of the top members.';
