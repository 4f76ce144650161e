-- Personal data (docs/courses.md, "Personal data"). An erased learner's
-- certificate stays, anonymised: its record loses the canonical text (which
-- names the holder by user ID) while certificate_hashes keeps answering
-- the public verification for the hash. NULL content: erased.
ALTER TABLE certificates ALTER COLUMN content DROP NOT NULL;
COMMENT ON COLUMN certificates.content IS 'Personal: the canonical text names the holder; NULL once they were erased.';
