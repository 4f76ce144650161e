-- Bounce and complaint reports a mail provider posted to the webhook
-- route, by the provider's event ID: a replayed report is recognised and
-- changes nothing.
CREATE TABLE mail_reports (
    tenant_id   uuid NOT NULL,
    id          text NOT NULL CHECK (length(id) BETWEEN 1 AND 200),
    kind        text NOT NULL CHECK (kind IN ('bounce', 'complaint')),
    message_id  text NOT NULL CHECK (length(message_id) <= 300),
    received_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
