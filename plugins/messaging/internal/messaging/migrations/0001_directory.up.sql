-- Who can be reached, and how they want to be reached.

-- people is platform-wide (no tenant_id): the address book the kernel's
-- identity events fill (identity.user.created.v1 and the other identity
-- events carry the address). institutions lists where the person is a
-- member, from tenancy.member.* events: a person's erasure in an
-- institution removes it, and the row goes with the last one.
CREATE TABLE people (
    user_id      uuid PRIMARY KEY,
    email        text NOT NULL,
    display_name text NOT NULL DEFAULT '',
    -- identity.email.verified.v1 proved the address its owner's: only then
    -- does email go to it (account mail goes to the event's own address).
    email_verified boolean NOT NULL DEFAULT false,
    institutions uuid[] NOT NULL DEFAULT '{}',
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- The institution's name and slug, for messages (tenancy.tenant.created.v1,
-- tenancy.invitation.created.v1).
CREATE TABLE institutions (
    tenant_id  uuid PRIMARY KEY,
    slug       text NOT NULL DEFAULT '' CHECK (length(slug) <= 100),
    name       text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- members of each institution, from tenancy.member.joined/roles_changed/removed.
CREATE TABLE members (
    tenant_id uuid NOT NULL,
    user_id   uuid NOT NULL,
    roles     text[] NOT NULL DEFAULT '{}',
    active    boolean NOT NULL DEFAULT true,
    joined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);

-- A person's own settings: time zone, quiet hours (minutes after local
-- midnight), digest hour, and what bounces and complaints said about
-- their address.
CREATE TABLE person_settings (
    tenant_id           uuid NOT NULL,
    user_id             uuid NOT NULL,
    time_zone           text NOT NULL DEFAULT '' CHECK (length(time_zone) <= 64),
    quiet_start         int CHECK (quiet_start BETWEEN 0 AND 1439),
    quiet_end           int CHECK (quiet_end BETWEEN 0 AND 1439),
    digest_hour         int CHECK (digest_hour BETWEEN 0 AND 23),
    email_status        text NOT NULL DEFAULT 'ok' CHECK (email_status IN ('ok', 'bounced', 'complained')),
    email_status_reason text CHECK (length(email_status_reason) <= 500),
    email_status_at     timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);

-- A person's choice per category and channel; source says how it was
-- made (the preferences API, a one-click unsubscribe, a complaint).
CREATE TABLE preferences (
    tenant_id  uuid NOT NULL,
    user_id    uuid NOT NULL,
    category   text NOT NULL CHECK (category ~ '^[a-z_]{1,40}$'),
    channel    text NOT NULL CHECK (channel IN ('email', 'push', 'in_app')),
    mode       text NOT NULL CHECK (mode IN ('off', 'immediate', 'digest')),
    source     text NOT NULL CHECK (source IN ('person', 'unsubscribe', 'complaint')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id, category, channel)
);
