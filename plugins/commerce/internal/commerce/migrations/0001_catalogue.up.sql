-- The catalogue: products, what each grants when paid (entitlements), prices
-- and promo codes. Every table has a tenant_id column, so the kernel puts it
-- under forced row-level security: a transaction sees and writes only its
-- institution's rows. tenant_id defaults to the transaction's institution.
-- Amounts are integers in the currency's minor unit (cents), never floats.

CREATE TABLE products (
    tenant_id   uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 2000),
    -- course: one course; bundle: several; membership: a plan (recurring
    -- prices), which may grant courses too.
    kind        text        NOT NULL CHECK (kind IN ('course', 'bundle', 'membership')),
    status      text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    created_by  uuid        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE INDEX products_list ON products (tenant_id, created_at DESC, id DESC);

-- What a paid product grants: enrolment in courses (the courses plugin
-- enrols the buyer on commerce.order.paid.v1), optionally in a cohort.
CREATE TABLE product_entitlements (
    tenant_id  uuid    NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    product_id uuid    NOT NULL,
    course_id  uuid    NOT NULL,
    cohort_id  uuid,
    position   integer NOT NULL CHECK (position >= 0),
    PRIMARY KEY (product_id, course_id),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE prices (
    tenant_id      uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    product_id     uuid        NOT NULL,
    nickname       text        NOT NULL DEFAULT '' CHECK (char_length(nickname) <= 100),
    currency       text        NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    unit_amount    bigint      NOT NULL CHECK (unit_amount BETWEEN 0 AND 99999999),
    -- one_time, or recurring every interval_count intervals.
    type           text        NOT NULL CHECK (type IN ('one_time', 'recurring')),
    recurring_interval       text CHECK (recurring_interval IN ('day', 'week', 'month', 'year')),
    recurring_interval_count integer CHECK (recurring_interval_count BETWEEN 1 AND 12),
    trial_days     integer     CHECK (trial_days BETWEEN 1 AND 730),
    -- exclusive: tax is added on top; inclusive: the amount includes it.
    tax_behavior   text        NOT NULL DEFAULT 'exclusive' CHECK (tax_behavior IN ('exclusive', 'inclusive')),
    active         boolean     NOT NULL DEFAULT true,
    created_by     uuid        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((type = 'recurring') = (recurring_interval IS NOT NULL AND recurring_interval_count IS NOT NULL)),
    CHECK (type = 'recurring' OR trial_days IS NULL),
    FOREIGN KEY (tenant_id, product_id) REFERENCES products (tenant_id, id) ON DELETE CASCADE,
    UNIQUE (tenant_id, id)
);
CREATE INDEX prices_product ON prices (tenant_id, product_id, created_at, id);

-- Promo codes. redeemed counts paid orders that used the code, reserved the
-- checkouts in progress that hold a redemption; together they never pass
-- max_redemptions (the CHECK is the last word even if code forgets).
CREATE TABLE promo_codes (
    tenant_id          uuid        NOT NULL DEFAULT NULLIF(current_setting('edulure.tenant_id', true), '')::uuid,
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    code               text        NOT NULL CHECK (code ~ '^[A-Z0-9][A-Z0-9_-]{2,39}$'),
    percent_off        integer     CHECK (percent_off BETWEEN 1 AND 100),
    amount_off         bigint      CHECK (amount_off BETWEEN 1 AND 99999999),
    currency           text        CHECK (currency ~ '^[a-z]{3}$'),
    -- once: the first payment; repeating: duration_periods billing periods
    -- of a subscription; forever.
    duration           text        NOT NULL DEFAULT 'once' CHECK (duration IN ('once', 'repeating', 'forever')),
    duration_periods   integer     CHECK (duration_periods BETWEEN 1 AND 36),
    expires_at         timestamptz,
    max_redemptions    integer     CHECK (max_redemptions >= 1),
    per_customer_limit integer     CHECK (per_customer_limit >= 1),
    -- Restricted to these products; empty: any.
    product_ids        uuid[]      NOT NULL DEFAULT '{}',
    redeemed           integer     NOT NULL DEFAULT 0 CHECK (redeemed >= 0),
    reserved           integer     NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    active             boolean     NOT NULL DEFAULT true,
    created_by         uuid        NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((percent_off IS NULL) <> (amount_off IS NULL)),
    CHECK ((amount_off IS NULL) = (currency IS NULL)),
    CHECK ((duration = 'repeating') = (duration_periods IS NOT NULL)),
    CHECK (max_redemptions IS NULL OR redeemed + reserved <= max_redemptions),
    UNIQUE (tenant_id, code),
    UNIQUE (tenant_id, id)
);
CREATE INDEX promo_codes_list ON promo_codes (tenant_id, created_at DESC, id DESC);
