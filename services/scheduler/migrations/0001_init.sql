-- Cadences as data: one row per firm, policy name and version.
CREATE TABLE policies (
    policy_id  uuid        PRIMARY KEY,
    firm_id    uuid        NOT NULL,
    name       text        NOT NULL,
    version    integer     NOT NULL,
    channel    text        NOT NULL,
    steps      jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (firm_id, name, version)
);

-- One outreach plan per invoice, with the latest eligibility decision it acts on.
CREATE TABLE plans (
    invoice_id        uuid        PRIMARY KEY,
    firm_id           uuid        NOT NULL,
    policy_id         uuid,
    policy_version    integer,
    -- active | halted
    status            text        NOT NULL,
    halt_reason       text,
    automation_status text        NOT NULL,
    decision_version  bigint      NOT NULL DEFAULT 0,
    -- The latest EligibilityChanged payload (snapshots the StepDue needs).
    decision          jsonb,
    decision_event_id uuid,
    correlation_id    uuid,
    due_date          date,
    plan_version      bigint      NOT NULL DEFAULT 0,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX plans_firm ON plans (firm_id);

-- Durable timers: a pending step is a timer; nothing is held in memory.
CREATE TABLE steps (
    step_id       uuid        PRIMARY KEY,
    invoice_id    uuid        NOT NULL REFERENCES plans (invoice_id),
    firm_id       uuid        NOT NULL,
    name          text        NOT NULL,
    offset_days   integer     NOT NULL,
    tone          text        NOT NULL,
    pay_link      boolean     NOT NULL,
    scheduled_for timestamptz NOT NULL,
    -- pending | fired | skipped | cancelled
    state         text        NOT NULL,
    reason        text,
    detail        text,
    fired_at      timestamptz,
    UNIQUE (invoice_id, name)
);
CREATE INDEX steps_due ON steps (scheduled_for) WHERE state = 'pending';

-- Contacts that opted out (channel NULL = every channel); consulted when a step fires.
CREATE TABLE opt_outs (
    contact_id uuid        NOT NULL,
    firm_id    uuid        NOT NULL,
    channel    text        NOT NULL,
    since      timestamptz NOT NULL,
    PRIMARY KEY (contact_id, channel)
);
