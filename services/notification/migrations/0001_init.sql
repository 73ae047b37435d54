-- The firm's zone for digests (from billing.firm_updated); UTC until one arrives.
CREATE TABLE firms (
    firm_id    uuid        PRIMARY KEY,
    name       text        NOT NULL,
    timezone   text        NOT NULL,
    version    bigint      NOT NULL
);

-- A firm user's subscription: which kinds, to which destination. Failure tracking is per
-- subscription (one subscription = one endpoint).
CREATE TABLE subscriptions (
    id                   uuid        PRIMARY KEY,
    firm_id              uuid        NOT NULL,
    user_name            text        NOT NULL,
    kinds                text[]      NOT NULL,
    channel              text        NOT NULL CHECK (channel IN ('email', 'slack', 'webhook')),
    -- email address, Slack webhook URL or webhook URL
    target               text        NOT NULL,
    -- `whsec_...` for webhooks
    secret               text,
    status               text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'deleted')),
    idempotency_key      text,
    consecutive_failures integer     NOT NULL DEFAULT 0,
    failing_since        timestamptz,
    last_error           text,
    last_failure_at      timestamptz,
    last_success_at      timestamptz,
    disabled_at          timestamptz,
    disabled_reason      text,
    created_at           timestamptz NOT NULL,
    UNIQUE (firm_id, idempotency_key)
);
CREATE INDEX subscriptions_firm ON subscriptions (firm_id, id);

-- Invoices that had at least one reminder sent: a payment after outreach is worth telling.
CREATE TABLE invoice_outreach (
    invoice_id    uuid        PRIMARY KEY,
    firm_id       uuid        NOT NULL,
    first_sent_at timestamptz NOT NULL,
    emails_sent   integer     NOT NULL DEFAULT 1
);

-- What the daily digest counts, by when it happened (the event's time).
CREATE TABLE firm_events (
    firm_id     uuid        NOT NULL,
    kind        text        NOT NULL,
    event_key   text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    PRIMARY KEY (firm_id, kind, event_key)
);
CREATE INDEX firm_events_time ON firm_events (firm_id, occurred_at);

-- The durable outbox of notifications: one row per (subscription, event). `event_key` is the
-- event id, or what makes a notification once-only (`dispute:<correlation>`, `digest:<date>`).
CREATE TABLE deliveries (
    id              uuid        PRIMARY KEY,
    firm_id         uuid        NOT NULL,
    subscription_id uuid        NOT NULL REFERENCES subscriptions (id),
    kind            text        NOT NULL,
    event_key       text        NOT NULL,
    event_id        uuid        NOT NULL,
    correlation_id  uuid        NOT NULL,
    -- {type, timestamp, data}: the webhook body; email and Slack render from it
    message         jsonb       NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'endpoint_disabled', 'cancelled')),
    attempts        integer     NOT NULL DEFAULT 0,
    -- due on the service clock (simulated in tests and the demo)...
    next_attempt_at timestamptz NOT NULL,
    -- ...or on the wall clock, whichever comes first
    retry_wall_at   timestamptz NOT NULL,
    -- a worker holds it until then (a crash mid-send frees it)
    lease_until     timestamptz,
    last_error      text,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL,
    UNIQUE (subscription_id, event_key)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_wall ON deliveries (retry_wall_at) WHERE status = 'pending';
CREATE INDEX deliveries_firm ON deliveries (firm_id, id);

CREATE TABLE delivery_attempts (
    delivery_id uuid        NOT NULL REFERENCES deliveries (id),
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL,
    succeeded   boolean     NOT NULL,
    status_code integer,
    error       text,
    duration_ms integer     NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
