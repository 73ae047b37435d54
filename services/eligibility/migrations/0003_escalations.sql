-- Escalation cases (`escalation.*`, the escalation service), one row per case at its latest
-- version: an open or referred case stops automation; a paused one pauses it until its date.
CREATE TABLE escalation_cases (
    case_id      uuid        PRIMARY KEY,
    firm_id      uuid        NOT NULL,
    invoice_id   uuid        NOT NULL,
    version      bigint      NOT NULL,
    -- open | paused | referred | resolved
    status       text        NOT NULL,
    reason       text        NOT NULL,
    agency       text,
    -- status paused: until when (NULL: indefinitely)
    paused_until timestamptz,
    -- The action of the latest version, who took it and why.
    action       text        NOT NULL,
    actor        text        NOT NULL,
    note         text        NOT NULL,
    at           timestamptz NOT NULL
);
CREATE INDEX escalation_cases_invoice ON escalation_cases (invoice_id);

ALTER TABLE invoices
    -- Open or referred cases, by reason (`cases_open` counts them).
    ADD COLUMN case_reasons        text,
    -- A person paused automation through a case; `case_paused_until` NULL = indefinitely.
    ADD COLUMN case_paused         boolean NOT NULL DEFAULT false,
    ADD COLUMN case_paused_until   timestamptz;
