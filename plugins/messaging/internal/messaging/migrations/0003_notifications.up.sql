-- Notifications, their delivery ledger, devices and send windows.

-- One notification per person (recipient_id), or per address for an
-- invitation (recipient_id NULL: the invitee has no account yet; the
-- address itself is not kept). dedupe_key makes its source create it once
-- (an event redelivered, a request repeated). inbox_seq numbers a person's
-- in-app notifications in the order they were delivered: the Server-Sent
-- Event ID a client resumes from.
CREATE TABLE notifications (
    tenant_id       uuid NOT NULL,
    id              uuid NOT NULL,
    recipient_id    uuid,
    category        text NOT NULL CHECK (category ~ '^[a-z_]{1,40}$'),
    kind            text NOT NULL CHECK (kind ~ '^[a-z_.]{1,80}$'),
    title           text NOT NULL,
    body            text NOT NULL,
    link            text NOT NULL DEFAULT '',
    data            jsonb NOT NULL DEFAULT '{}',
    actor_id        uuid,
    post_id         uuid,
    source_event_id uuid,
    dedupe_key      text NOT NULL,
    critical        boolean NOT NULL DEFAULT false,
    transactional   boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL,
    inbox_seq       bigint,
    read_at         timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, dedupe_key)
);
CREATE UNIQUE INDEX notifications_inbox ON notifications (tenant_id, recipient_id, inbox_seq) WHERE inbox_seq IS NOT NULL;
CREATE INDEX notifications_unread ON notifications (tenant_id, recipient_id) WHERE inbox_seq IS NOT NULL AND read_at IS NULL;

-- The last inbox_seq given to a person: taken under the row's lock, so a
-- person's sequence commits in order.
CREATE TABLE inbox_counters (
    tenant_id uuid NOT NULL,
    user_id   uuid NOT NULL,
    last_seq  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, user_id)
);

-- The ledger: one row per notification and channel, with where it stands
-- and why. Waiting states: pending, deferred (quiet hours), throttled,
-- retrying, digest (waiting for the person's digest). Final: sent,
-- suppressed, digested, bounced, complained, failed.
CREATE TABLE deliveries (
    tenant_id       uuid NOT NULL,
    notification_id uuid NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('email', 'push', 'in_app')),
    status          text NOT NULL CHECK (status IN ('pending', 'deferred', 'throttled', 'retrying', 'digest',
                                                    'sent', 'suppressed', 'digested', 'bounced', 'complained', 'failed')),
    reason_code     text NOT NULL DEFAULT '' CHECK (reason_code ~ '^[a-z_]{0,40}$'),
    reason          text NOT NULL DEFAULT '',
    attempts        int NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    claim_id        uuid,
    claimed_until   timestamptz,
    digest_id       uuid,
    message_id      text,
    sent_at         timestamptz,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, notification_id, channel),
    FOREIGN KEY (tenant_id, notification_id) REFERENCES notifications (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX deliveries_due ON deliveries (tenant_id, channel, next_attempt_at)
    WHERE status IN ('pending', 'deferred', 'throttled', 'retrying', 'digest');
CREATE INDEX deliveries_message ON deliveries (tenant_id, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX deliveries_digest ON deliveries (tenant_id, digest_id) WHERE digest_id IS NOT NULL;

-- Every change of a delivery, for the explain route.
CREATE TABLE delivery_events (
    tenant_id       uuid NOT NULL,
    id              bigint GENERATED ALWAYS AS IDENTITY,
    notification_id uuid NOT NULL,
    channel         text NOT NULL CHECK (channel IN ('email', 'push', 'in_app')),
    status          text NOT NULL CHECK (status ~ '^[a-z_]{1,20}$'),
    reason_code     text NOT NULL DEFAULT '' CHECK (reason_code ~ '^[a-z_]{0,40}$'),
    reason          text NOT NULL DEFAULT '',
    at              timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, notification_id) REFERENCES notifications (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX delivery_events_notification ON delivery_events (tenant_id, notification_id, id);

-- Web push subscriptions (one per endpoint), and what each push to a
-- device answered, so that a retry skips the devices that have it.
CREATE TABLE devices (
    tenant_id    uuid NOT NULL,
    id           uuid NOT NULL,
    user_id      uuid NOT NULL,
    endpoint     text NOT NULL CHECK (length(endpoint) <= 2048),
    p256dh       text NOT NULL CHECK (p256dh ~ '^[A-Za-z0-9_=+/-]{1,200}$'),
    auth         text NOT NULL CHECK (auth ~ '^[A-Za-z0-9_=+/-]{1,100}$'),
    user_agent   text NOT NULL DEFAULT '' CHECK (length(user_agent) <= 300),
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, endpoint)
);
CREATE INDEX devices_user ON devices (tenant_id, user_id);

CREATE TABLE push_attempts (
    tenant_id       uuid NOT NULL,
    notification_id uuid NOT NULL,
    device_id       uuid NOT NULL,
    status          text NOT NULL CHECK (status IN ('sent', 'gone', 'failed')),
    http_status     int NOT NULL DEFAULT 0,
    at              timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, notification_id, device_id),
    FOREIGN KEY (tenant_id, notification_id) REFERENCES notifications (tenant_id, id) ON DELETE CASCADE
);

-- Send windows (platform-wide, no tenant_id: they share the channels'
-- capacity between institutions). send_windows counts what each
-- institution sent per channel and minute; send_demand says which
-- institutions are waiting to send, for the fair share.
CREATE TABLE send_windows (
    channel      text NOT NULL CHECK (channel IN ('email', 'push')),
    window_start timestamptz NOT NULL,
    institution  uuid NOT NULL,
    sent         int NOT NULL DEFAULT 0,
    PRIMARY KEY (channel, window_start, institution)
);
CREATE TABLE send_demand (
    channel     text NOT NULL CHECK (channel IN ('email', 'push')),
    institution uuid NOT NULL,
    waiting     int NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (channel, institution)
);

-- Mail for platform events (a password reset, an address to verify, a
-- locked second factor): no institution, so a ledger of its own. The
-- address is not kept.
CREATE TABLE platform_deliveries (
    event_id   uuid PRIMARY KEY,
    kind       text NOT NULL CHECK (kind ~ '^[a-z_.]{1,80}$'),
    user_id    uuid NOT NULL,
    status     text NOT NULL CHECK (status IN ('sent', 'bounced', 'failed', 'suppressed')),
    reason     text NOT NULL DEFAULT '',
    message_id text,
    created_at timestamptz NOT NULL
);
CREATE INDEX platform_deliveries_user ON platform_deliveries (user_id);
