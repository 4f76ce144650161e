-- Stripe's side: webhook events as received, their failures, subscription
-- states, invoices and invoice events, reconciliation runs, anomalies, and
-- the enrolments the courses plugin made for orders (entitlement drift).

-- Every Stripe event taken in, from a webhook or the reconciliation job,
-- stored before the webhook is acknowledged. (tenant_id, stripe_event_id)
-- is the replay protection: an event is stored and processed once.
CREATE TABLE webhook_events (
    tenant_id       uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    stripe_event_id text        NOT NULL CHECK (stripe_event_id ~ '^evt_[A-Za-z0-9_]+$'),
    type            text        NOT NULL CHECK (type ~ '^[a-z0-9_.]{1,100}$'),
    api_version     text        NOT NULL DEFAULT '' CHECK (char_length(api_version) <= 40),
    livemode        boolean     NOT NULL DEFAULT false,
    created         bigint      NOT NULL,
    -- The buyer the event is about, once processing knows it.
    user_id         uuid,
    payload         jsonb       NOT NULL,
    source          text        NOT NULL CHECK (source IN ('webhook', 'reconciliation')),
    status          text        NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'processed', 'ignored', 'failed')),
    note            text        NOT NULL DEFAULT '' CHECK (char_length(note) <= 500),
    received_at     timestamptz NOT NULL DEFAULT now(),
    processed_at    timestamptz,
    UNIQUE (tenant_id, stripe_event_id),
    UNIQUE (tenant_id, id)
);
CREATE INDEX webhook_events_user ON webhook_events (tenant_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX webhook_events_received ON webhook_events (tenant_id, received_at);

-- Events whose processing failed, with the error, for an admin to replay.
CREATE TABLE webhook_failures (
    tenant_id        uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    webhook_event_id uuid        NOT NULL,
    error            text        NOT NULL CHECK (char_length(error) <= 2000),
    attempts         integer     NOT NULL DEFAULT 1 CHECK (attempts >= 1),
    status           text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    first_failed_at  timestamptz NOT NULL DEFAULT now(),
    last_failed_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at      timestamptz,
    -- Who replayed it; NULL when a later delivery succeeded.
    resolved_by      uuid,
    UNIQUE (tenant_id, webhook_event_id),
    FOREIGN KEY (tenant_id, webhook_event_id) REFERENCES webhook_events (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_failures_list ON webhook_failures (tenant_id, last_failed_at DESC, id DESC);

-- Subscription states. state_at is the created time of the Stripe event
-- (or fetch) the state comes from: an older one never overwrites it, and a
-- canceled subscription is never reactivated.
CREATE TABLE subscriptions (
    tenant_id              uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id                     uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    stripe_subscription_id text        NOT NULL CHECK (stripe_subscription_id ~ '^sub_[A-Za-z0-9_]+$'),
    user_id                uuid,
    order_id               uuid,
    product_id             uuid,
    price_id               uuid,
    status                 text        NOT NULL CHECK (status IN ('incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'canceled', 'unpaid', 'paused')),
    current_period_start   timestamptz,
    current_period_end     timestamptz,
    cancel_at_period_end   boolean     NOT NULL DEFAULT false,
    canceled_at            timestamptz,
    ended_at               timestamptz,
    state_at               bigint      NOT NULL,
    state_event_id         text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, stripe_subscription_id),
    UNIQUE (tenant_id, id)
);
CREATE INDEX subscriptions_user ON subscriptions (tenant_id, user_id, created_at DESC, id DESC);
CREATE INDEX subscriptions_list ON subscriptions (tenant_id, created_at DESC, id DESC);

CREATE TABLE invoices (
    tenant_id              uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id                     uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    stripe_invoice_id      text        NOT NULL CHECK (stripe_invoice_id ~ '^in_[A-Za-z0-9_]+$'),
    stripe_subscription_id text        CHECK (stripe_subscription_id ~ '^sub_[A-Za-z0-9_]+$'),
    user_id                uuid,
    status                 text        NOT NULL CHECK (status IN ('draft', 'open', 'paid', 'void', 'uncollectible')),
    currency               text        NOT NULL DEFAULT '' CHECK (currency ~ '^([a-z]{3})?$'),
    amount_due             bigint      NOT NULL DEFAULT 0,
    amount_paid            bigint      NOT NULL DEFAULT 0,
    -- Stripe's hosted invoice page: it shows the customer's name and address.
    hosted_invoice_url     text        CHECK (char_length(hosted_invoice_url) <= 2000),
    period_start           timestamptz,
    period_end             timestamptz,
    paid_at                timestamptz,
    state_at               bigint      NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, stripe_invoice_id),
    UNIQUE (tenant_id, id)
);
CREATE INDEX invoices_user ON invoices (tenant_id, user_id, created_at DESC, id DESC);
CREATE INDEX invoices_list ON invoices (tenant_id, created_at DESC, id DESC);

-- Each invoice event once (by Stripe's event ID), whatever arrives twice.
CREATE TABLE invoice_events (
    tenant_id         uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    stripe_event_id   text        NOT NULL,
    stripe_invoice_id text        NOT NULL,
    type              text        NOT NULL CHECK (type ~ '^invoice\.[a-z_.]{1,60}$'),
    created           bigint      NOT NULL,
    status            text        NOT NULL CHECK (status ~ '^[a-z_]{1,20}$'),
    amount_paid       bigint      NOT NULL DEFAULT 0,
    applied           boolean     NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, stripe_event_id)
);
CREATE INDEX invoice_events_invoice ON invoice_events (tenant_id, stripe_invoice_id, created);

CREATE TABLE reconciliation_runs (
    tenant_id     uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    job_run_id    text        NOT NULL DEFAULT '' CHECK (char_length(job_run_id) <= 100),
    trigger       text        NOT NULL CHECK (trigger IN ('schedule', 'event', 'manual')),
    status        text        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    events_seen   integer     NOT NULL DEFAULT 0,
    events_missed integer     NOT NULL DEFAULT 0,
    repaired      integer     NOT NULL DEFAULT 0,
    anomalies     integer     NOT NULL DEFAULT 0,
    error         text        NOT NULL DEFAULT '' CHECK (char_length(error) <= 2000),
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz
);
CREATE INDEX reconciliation_runs_list ON reconciliation_runs (tenant_id, started_at DESC, id DESC);

-- What reconciliation (or processing) found that it could not repair, or
-- repaired and reports: each once per kind and object.
CREATE TABLE billing_anomalies (
    tenant_id   uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    kind        text        NOT NULL CHECK (kind ~ '^[a-z_]{1,60}$'),
    object_type text        NOT NULL CHECK (object_type ~ '^[a-z_]{1,40}$'),
    object_id   text        NOT NULL CHECK (char_length(object_id) BETWEEN 1 AND 255),
    detail      text        NOT NULL CHECK (char_length(detail) <= 1000),
    repaired    boolean     NOT NULL DEFAULT false,
    run_id      uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, kind, object_id)
);
CREATE INDEX billing_anomalies_list ON billing_anomalies (tenant_id, created_at DESC, id DESC);

-- The enrolments the courses plugin made (and withdrew) for orders, from its
-- courses.enrolment.*.v1 events: what the entitlement drift check compares.
CREATE TABLE order_enrolments (
    tenant_id    uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    order_id     uuid        NOT NULL,
    course_id    uuid        NOT NULL,
    enrolment_id uuid        NOT NULL,
    user_id      uuid        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('active', 'waitlisted', 'completed', 'withdrawn')),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, course_id),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id) ON DELETE CASCADE
);
