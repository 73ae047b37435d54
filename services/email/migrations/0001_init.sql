-- The email outbox: one row per step (UNIQUE step_id is fence 3, exactly one send per step).
CREATE TABLE emails (
    id               uuid        PRIMARY KEY,
    step_id          uuid        NOT NULL UNIQUE,
    firm_id          uuid        NOT NULL,
    invoice_id       uuid        NOT NULL,
    contact_id       uuid        NOT NULL,
    step             text        NOT NULL,
    tone             text        NOT NULL,
    -- The StepDue event that asked for it: the causation/correlation of what we publish.
    cause_event_id   uuid        NOT NULL,
    correlation_id   uuid        NOT NULL,
    to_name          text        NOT NULL,
    to_address       text        NOT NULL,
    from_name        text        NOT NULL,
    from_address     text        NOT NULL,
    subject          text        NOT NULL,
    body_text        text        NOT NULL,
    body_html        text        NOT NULL,
    unsubscribe_url  text        NOT NULL,
    template         text        NOT NULL,
    template_version integer     NOT NULL,
    explanation      jsonb       NOT NULL,
    -- pending -> sending -> sent | failed | suppressed | uncertain (crash during hand-off); pending again on a transient error.
    state            text        NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'suppressed', 'uncertain')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    message_id       text,
    last_error       text,
    sent_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX emails_due ON emails (next_attempt_at) WHERE state = 'pending';
CREATE INDEX emails_invoice ON emails (firm_id, invoice_id);
