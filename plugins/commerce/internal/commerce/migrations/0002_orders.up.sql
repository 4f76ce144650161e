-- Orders, their line items, payment intents, refunds and promo redemptions.
--
-- An order's state machine: pending → paid | expired | failed; paid →
-- partially_refunded → refunded (or paid → refunded). Only a verified Stripe
-- webhook or the reconciliation job moves an order to paid.

CREATE TABLE orders (
    tenant_id         uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id           uuid        NOT NULL,
    status            text        NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'paid', 'expired', 'failed', 'partially_refunded', 'refunded')),
    mode              text        NOT NULL CHECK (mode IN ('payment', 'subscription')),
    currency          text        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    amount_subtotal   bigint      NOT NULL CHECK (amount_subtotal >= 0),
    amount_discount   bigint      NOT NULL CHECK (amount_discount >= 0),
    amount_tax        bigint      NOT NULL CHECK (amount_tax >= 0),
    amount_total      bigint      NOT NULL CHECK (amount_total >= 0),
    amount_refunded   bigint      NOT NULL DEFAULT 0 CHECK (amount_refunded >= 0),
    promo_code_id     uuid,
    promo_code        text        CHECK (promo_code ~ '^[A-Z0-9][A-Z0-9_-]{2,39}$'),
    -- The tax calculation as it was at checkout: calculator, country,
    -- rate, behaviour, amounts. Never recomputed.
    tax               jsonb       NOT NULL,
    -- Stripe's idempotency key of the Checkout Session is
    -- edulure-checkout-<id>-<attempt>.
    attempt           integer     NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    idempotency_key   text        CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    request_hash      bytea,
    stripe_session_id text        CHECK (stripe_session_id ~ '^cs_[A-Za-z0-9_]+$'),
    checkout_url      text        CHECK (char_length(checkout_url) <= 2000),
    session_expires_at timestamptz,
    stripe_payment_intent_id text CHECK (stripe_payment_intent_id ~ '^pi_[A-Za-z0-9_]+$'),
    stripe_subscription_id   text CHECK (stripe_subscription_id ~ '^sub_[A-Za-z0-9_]+$'),
    stripe_customer_id       text CHECK (stripe_customer_id ~ '^cus_[A-Za-z0-9_]+$'),
    -- Why the order is in its state, for people: "expired at Stripe",
    -- "Stripe refused the checkout: ...". Never personal.
    status_reason     text        NOT NULL DEFAULT '' CHECK (char_length(status_reason) <= 500),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    paid_at           timestamptz,
    closed_at         timestamptz,
    refunded_at       timestamptz,
    UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX orders_idempotency ON orders (tenant_id, user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX orders_session ON orders (tenant_id, stripe_session_id) WHERE stripe_session_id IS NOT NULL;
CREATE INDEX orders_payment_intent ON orders (tenant_id, stripe_payment_intent_id) WHERE stripe_payment_intent_id IS NOT NULL;
CREATE INDEX orders_user ON orders (tenant_id, user_id, created_at DESC, id DESC);
CREATE INDEX orders_list ON orders (tenant_id, created_at DESC, id DESC);
CREATE INDEX orders_open ON orders (tenant_id, created_at) WHERE status = 'pending';

-- Line items, with the product and price as they were (a snapshot).
CREATE TABLE order_items (
    tenant_id       uuid    NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    order_id        uuid    NOT NULL,
    position        integer NOT NULL CHECK (position >= 0),
    product_id      uuid    NOT NULL,
    price_id        uuid    NOT NULL,
    product_name    text    NOT NULL,
    quantity        integer NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    unit_amount     bigint  NOT NULL CHECK (unit_amount >= 0),
    amount_subtotal bigint  NOT NULL CHECK (amount_subtotal >= 0),
    amount_discount bigint  NOT NULL CHECK (amount_discount >= 0),
    amount_tax      bigint  NOT NULL CHECK (amount_tax >= 0),
    amount_total    bigint  NOT NULL CHECK (amount_total >= 0),
    recurring_interval       text,
    recurring_interval_count integer,
    -- The courses (and cohorts) the item grants: [{"course_id", "cohort_id"?}].
    entitlements    jsonb   NOT NULL DEFAULT '[]',
    PRIMARY KEY (order_id, position),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id) ON DELETE CASCADE
);

-- A promo code's redemption by an order: reserved while the checkout is
-- open, redeemed when it is paid, released when it expires or fails.
CREATE TABLE promo_redemptions (
    tenant_id     uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    order_id      uuid        PRIMARY KEY,
    promo_code_id uuid        NOT NULL,
    user_id       uuid        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('reserved', 'redeemed', 'released')),
    amount_off    bigint      NOT NULL CHECK (amount_off >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, promo_code_id) REFERENCES promo_codes (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX promo_redemptions_customer ON promo_redemptions (tenant_id, promo_code_id, user_id) WHERE status <> 'released';

-- Stripe's payment intents, as their events report them.
CREATE TABLE payment_intents (
    tenant_id       uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id              text        PRIMARY KEY CHECK (id ~ '^pi_[A-Za-z0-9_]+$'),
    order_id        uuid,
    status          text        NOT NULL CHECK (status ~ '^[a-z_]{1,40}$'),
    amount          bigint      NOT NULL DEFAULT 0,
    amount_received bigint      NOT NULL DEFAULT 0,
    currency        text        NOT NULL DEFAULT '' CHECK (currency ~ '^([a-z]{3})?$'),
    -- The created time of the Stripe event whose state this is: an older
    -- event never overwrites a newer one.
    state_at        bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id) ON DELETE CASCADE
);

-- Refunds asked for through the API (POST /api/v1/orders/{id}/refunds).
CREATE TABLE refunds (
    tenant_id        uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id         uuid        NOT NULL,
    amount           bigint      NOT NULL CHECK (amount >= 1),
    reason           text        CHECK (reason IN ('duplicate', 'fraudulent', 'requested_by_customer')),
    status           text        NOT NULL CHECK (status IN ('requested', 'pending', 'succeeded', 'failed', 'canceled')),
    stripe_refund_id text        CHECK (stripe_refund_id ~ '^re_[A-Za-z0-9_]+$'),
    idempotency_key  text        CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    requested_by     uuid        NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX refunds_order ON refunds (tenant_id, order_id, created_at);
CREATE UNIQUE INDEX refunds_idempotency ON refunds (tenant_id, order_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
