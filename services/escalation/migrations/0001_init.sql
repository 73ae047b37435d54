-- Escalation cases and the read models that fill their public payload without calling back.
-- A read-model row whose `version` is NULL is a placeholder (an event about it overtook the record).

CREATE TABLE firms (
    firm_id    uuid        PRIMARY KEY,
    version    bigint      NOT NULL,
    name       text        NOT NULL,
    timezone   text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Per-firm escalation settings, editable through the API.
CREATE TABLE settings (
    firm_id                 uuid        PRIMARY KEY,
    days_past_due_threshold integer     NOT NULL,
    updated_by              text        NOT NULL,
    updated_at              timestamptz NOT NULL
);

CREATE TABLE clients (
    client_id  uuid        PRIMARY KEY,
    firm_id    uuid        NOT NULL,
    version    bigint      NOT NULL,
    name       text        NOT NULL,
    tier       text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE contacts (
    contact_id uuid        PRIMARY KEY,
    firm_id    uuid        NOT NULL,
    client_id  uuid        NOT NULL,
    version    bigint      NOT NULL,
    name       text        NOT NULL,
    email      text,
    phone      text,
    is_primary boolean     NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_client ON contacts (client_id);

CREATE TABLE invoices (
    invoice_id          uuid        PRIMARY KEY,
    firm_id             uuid        NOT NULL,
    client_id           uuid        NOT NULL,
    -- Snapshot version (billing.invoice_upserted, or the eligibility snapshot's invoice version).
    version             bigint,
    stripe_invoice_id   text,
    number              text,
    currency            text,
    amount_due          numeric,
    amount_remaining    numeric,
    due_date            date,
    hosted_invoice_url  text,
    -- draft/open/paid/void/uncollectible, with its own version so an older snapshot never undoes a halt.
    status              text,
    status_version      bigint,
    -- From eligibility.changed: enabled/paused/escalated/halted_paid/uncollectible.
    automation_status   text,
    eligibility_version bigint      NOT NULL DEFAULT 0,
    -- eligibility.promise_broken events seen (each promise once).
    broken_promises     integer     NOT NULL DEFAULT 0,
    -- The last reply / email sent / broken promise: a CaseActivity.
    latest_activity     jsonb,
    latest_activity_at  timestamptz,
    -- When the sweep escalated it for days past due (a case opened, or a note on an active one): once.
    past_due_escalated_at timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_firm ON invoices (firm_id);
CREATE INDEX invoices_client ON invoices (client_id);

-- Broken promises counted once each (eligibility publishes one per promise; the inbox catches
-- redeliveries, this catches a republished event with a new id).
CREATE TABLE broken_promises (
    invoice_id uuid        NOT NULL,
    promise    text        NOT NULL,
    PRIMARY KEY (invoice_id, promise)
);

-- The queue: one row per case.
CREATE TABLE cases (
    case_id        uuid        PRIMARY KEY,
    firm_id        uuid        NOT NULL,
    client_id      uuid        NOT NULL,
    contact_id     uuid,
    -- NULL for a client-wide case.
    invoice_id     uuid,
    reason         text        NOT NULL,
    -- At most one case per invoice (or client) and family is not resolved (see cases.rs).
    family         text        NOT NULL,
    evidence       text        NOT NULL,
    -- open | paused | referred | resolved
    status         text        NOT NULL,
    version        bigint      NOT NULL,
    opened_at      timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    resolved_at    timestamptz,
    paused_until   timestamptz,
    agency         text,
    -- A mark-uncollectible sent to Stripe through the gateway and not answered yet.
    pending_command uuid
);
CREATE UNIQUE INDEX cases_one_active ON cases (firm_id, (coalesce(invoice_id, client_id)), family)
    WHERE status <> 'resolved';
CREATE INDEX cases_queue ON cases (firm_id, status, opened_at, case_id);
CREATE INDEX cases_invoice ON cases (invoice_id);
CREATE INDEX cases_paused ON cases (paused_until) WHERE status = 'paused' AND paused_until IS NOT NULL;

-- Append-only: who did what to a case, why, and when.
CREATE TABLE case_actions (
    action_id    uuid        PRIMARY KEY,
    case_id      uuid        NOT NULL REFERENCES cases (case_id),
    firm_id      uuid        NOT NULL,
    -- The case version this action produced.
    version      bigint      NOT NULL,
    action       text        NOT NULL,
    actor        text        NOT NULL,
    note         text        NOT NULL,
    at           timestamptz NOT NULL,
    paused_until timestamptz,
    agency       text,
    -- Anything else: the agency hand-off summary, the Stripe command, the triggering event.
    details      jsonb       NOT NULL DEFAULT '{}',
    UNIQUE (case_id, version)
);
