-- A completed erasure's verification: the person's export run again after
-- every step was done, counted per source (docs/api.md, "Erasures"). NULL
-- for requests completed before it existed, and for offboardings.
ALTER TABLE kernel.privacy_requests ADD COLUMN verification jsonb;
