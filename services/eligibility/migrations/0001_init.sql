-- Read models of the gateway's records, the consent state, and every decision.
-- A row whose `version` is NULL is a placeholder: an event about it arrived
-- before the record itself (kept so nothing is lost; filled in when the record comes).

CREATE TABLE firms (
    firm_id          uuid        PRIMARY KEY,
    version          bigint      NOT NULL,
    name             text        NOT NULL,
    sender_email     text        NOT NULL,
    stripe_connected boolean     NOT NULL,
    timezone         text        NOT NULL,
    -- {"USD": "50.00", ...}
    min_amounts      jsonb       NOT NULL DEFAULT '{}',
    email_window     jsonb       NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE clients (
    client_id            uuid        PRIMARY KEY,
    firm_id              uuid        NOT NULL,
    version              bigint      NOT NULL,
    name                 text        NOT NULL,
    tier                 text        NOT NULL,
    timezone             text,
    excluded             boolean     NOT NULL DEFAULT false,
    -- Every contact opted out: the firm was warned (once per transition).
    all_opted_out        boolean     NOT NULL DEFAULT false,
    opted_out_warnings   bigint      NOT NULL DEFAULT 0,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clients_firm ON clients (firm_id);

CREATE TABLE contacts (
    contact_id      uuid        PRIMARY KEY,
    firm_id         uuid        NOT NULL,
    client_id       uuid        NOT NULL,
    version         bigint,
    name            text        NOT NULL DEFAULT '',
    email           text,
    phone           text,
    timezone        text,
    is_primary      boolean     NOT NULL DEFAULT false,
    consent_email   boolean     NOT NULL DEFAULT false,
    consent_voice   boolean     NOT NULL DEFAULT false,
    consent_sms     boolean     NOT NULL DEFAULT false,
    -- From consent.* (the opt-out service's ledger), never overwritten by billing.*.
    opted_out_email boolean     NOT NULL DEFAULT false,
    opted_out_voice boolean     NOT NULL DEFAULT false,
    opted_out_sms   boolean     NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_client ON contacts (client_id);

CREATE TABLE invoices (
    invoice_id         uuid        PRIMARY KEY,
    firm_id            uuid        NOT NULL,
    client_id          uuid        NOT NULL,
    -- Version of the snapshot columns (InvoiceUpserted); NULL = not received yet.
    version            bigint,
    stripe_invoice_id  text,
    number             text,
    currency           text,
    amount_due         numeric,
    amount_remaining   numeric,
    due_date           date,
    hosted_invoice_url text,
    excluded           boolean     NOT NULL DEFAULT false,
    disputed           boolean     NOT NULL DEFAULT false,
    -- draft/open/paid/void/uncollectible; its own version so a halt is not undone by an older snapshot.
    status             text,
    status_version     bigint,
    -- Open escalation cases (escalation.* will maintain it).
    cases_open         integer     NOT NULL DEFAULT 0,
    -- A payment promise or plan (billing.invoice_paused).
    paused_until       timestamptz,
    pause_reason       text,
    pause_version      bigint,
    -- Decision state: the last published decision and when a time-dependent input flips next.
    past_due           boolean     NOT NULL DEFAULT false,
    next_check_at      timestamptz,
    decision_version   bigint      NOT NULL DEFAULT 0,
    decision_hash      text,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_client ON invoices (client_id);
CREATE INDEX invoices_firm ON invoices (firm_id);
CREATE INDEX invoices_next_check ON invoices (next_check_at) WHERE next_check_at IS NOT NULL;

-- Every published decision, with each check and its reason.
CREATE TABLE decisions (
    invoice_id        uuid        NOT NULL,
    version           bigint      NOT NULL,
    firm_id           uuid        NOT NULL,
    eligible          boolean     NOT NULL,
    past_due          boolean     NOT NULL,
    automation_status text        NOT NULL,
    checks            jsonb       NOT NULL,
    payload_hash      text        NOT NULL,
    evaluated_at      timestamptz NOT NULL,
    PRIMARY KEY (invoice_id, version)
);
