-- Trace context of the work that published an event or started a job run
-- (a W3C traceparent; '' when the kernel was not tracing), so that its
-- delivery and its attempts link to the trace of the request that caused
-- them. Plugin outboxes get the same column from their provisioning.
ALTER TABLE kernel.outbox ADD COLUMN traceparent text NOT NULL DEFAULT '';
ALTER TABLE kernel.events ADD COLUMN traceparent text NOT NULL DEFAULT '';
ALTER TABLE kernel.job_runs ADD COLUMN traceparent text NOT NULL DEFAULT '';
