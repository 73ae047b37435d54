-- The gateway's own tables (schema `gateway`; the pool's search_path points here).

CREATE TABLE firms (
    id                     uuid        PRIMARY KEY,
    name                   text        NOT NULL,
    sender_email           text        NOT NULL,
    timezone               text        NOT NULL,
    stripe_connected       boolean     NOT NULL DEFAULT true,
    -- Plain text: an HMAC can only be checked with the secret itself. Never returned or logged.
    stripe_webhook_secrets text[]      NOT NULL DEFAULT '{}',
    stripe_api_key         text,
    min_amounts            jsonb       NOT NULL DEFAULT '{}',
    email_window           jsonb       NOT NULL,
    version                bigint      NOT NULL,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL
);

CREATE TABLE api_keys (
    id         uuid        PRIMARY KEY,
    firm_id    uuid        NOT NULL REFERENCES firms (id),
    -- SHA-256 of the key, hex; the key itself is shown once.
    key_hash   text        NOT NULL UNIQUE,
    prefix     text        NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

-- POST responses by (firm, Idempotency-Key); firm creation uses the nil firm id.
CREATE TABLE idempotency_keys (
    firm_id    uuid        NOT NULL,
    key        text        NOT NULL,
    path       text        NOT NULL,
    status     smallint    NOT NULL,
    body       jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (firm_id, key)
);

CREATE TABLE clients (
    id                 uuid        PRIMARY KEY,
    firm_id            uuid        NOT NULL REFERENCES firms (id),
    stripe_customer_id text,
    name               text        NOT NULL,
    tier               text        NOT NULL DEFAULT 'standard',
    timezone           text,
    excluded           boolean     NOT NULL DEFAULT false,
    version            bigint      NOT NULL,
    -- Stripe `created` of the last customer event applied (ordering of out-of-order webhooks).
    stripe_version     bigint      NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    UNIQUE (firm_id, stripe_customer_id)
);
CREATE INDEX clients_firm ON clients (firm_id, id);

CREATE TABLE contacts (
    id            uuid        PRIMARY KEY,
    firm_id       uuid        NOT NULL REFERENCES firms (id),
    client_id     uuid        NOT NULL REFERENCES clients (id),
    name          text        NOT NULL,
    email         text,
    phone         text,
    timezone      text,
    is_primary    boolean     NOT NULL DEFAULT false,
    consent_email boolean     NOT NULL DEFAULT false,
    consent_voice boolean     NOT NULL DEFAULT false,
    consent_sms   boolean     NOT NULL DEFAULT false,
    -- The Stripe customer's own billing contact (kept in step with customer.updated).
    from_stripe   boolean     NOT NULL DEFAULT false,
    version       bigint      NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX contacts_client ON contacts (client_id);

-- arflow's own id per (firm, Stripe invoice): allocated before the hold is written.
CREATE TABLE invoice_ids (
    firm_id           uuid NOT NULL,
    stripe_invoice_id text NOT NULL,
    invoice_id        uuid NOT NULL UNIQUE,
    PRIMARY KEY (firm_id, stripe_invoice_id)
);

CREATE TABLE invoices (
    id                 uuid        PRIMARY KEY,
    firm_id            uuid        NOT NULL REFERENCES firms (id),
    client_id          uuid        NOT NULL REFERENCES clients (id),
    stripe_invoice_id  text        NOT NULL,
    number             text,
    currency           text        NOT NULL,
    amount_due         numeric     NOT NULL,
    amount_remaining   numeric     NOT NULL,
    due_date           date,
    status             text        NOT NULL,
    hosted_invoice_url text,
    excluded           boolean     NOT NULL DEFAULT false,
    disputed           boolean     NOT NULL DEFAULT false,
    version            bigint      NOT NULL,
    stripe_version     bigint      NOT NULL DEFAULT 0,
    -- The projection: automation status and next action from eligibility / the scheduler.
    automation_status  text,
    next_action        jsonb,
    plan_version       bigint      NOT NULL DEFAULT 0,
    eligibility_version bigint     NOT NULL DEFAULT 0,
    failed_rules       text[],
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    UNIQUE (firm_id, stripe_invoice_id)
);
CREATE INDEX invoices_firm ON invoices (firm_id, id);
CREATE INDEX invoices_client ON invoices (client_id);

CREATE TABLE webhook_events (
    firm_id     uuid        NOT NULL REFERENCES firms (id),
    event_id    text        NOT NULL,
    type        text        NOT NULL,
    created     bigint      NOT NULL,
    outcome     text        NOT NULL,
    payload     jsonb       NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (firm_id, event_id)
);

-- Every step of an invoice's story, with why.
CREATE TABLE activity (
    id         bigserial   PRIMARY KEY,
    firm_id    uuid        NOT NULL,
    invoice_id uuid        NOT NULL,
    at         timestamptz NOT NULL,
    kind       text        NOT NULL,
    summary    text        NOT NULL,
    detail     jsonb       NOT NULL DEFAULT '{}',
    event_id   text        NOT NULL,
    UNIQUE (invoice_id, event_id, kind)
);
CREATE INDEX activity_invoice ON activity (firm_id, invoice_id, at, id);
CREATE INDEX activity_firm_kind ON activity (firm_id, kind);

CREATE TABLE unsubscribes (
    token_hash text        PRIMARY KEY,
    firm_id    uuid        NOT NULL,
    contact_id uuid        NOT NULL,
    at         timestamptz NOT NULL
);
