-- When a note was written, for the retention tests (class "notes").
ALTER TABLE notes ADD COLUMN written_at timestamptz NOT NULL DEFAULT now();
