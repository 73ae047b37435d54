-- One call per step (UNIQUE step_id is fence 3: exactly one call per step under redelivery).
CREATE TABLE calls (
    id              uuid        PRIMARY KEY,
    step_id         uuid        NOT NULL UNIQUE,
    firm_id         uuid        NOT NULL,
    invoice_id      uuid        NOT NULL,
    contact_id      uuid        NOT NULL,
    client_id       uuid        NOT NULL,
    step            text        NOT NULL,
    attempt         integer     NOT NULL,
    -- The StepDue as received: contact, invoice, firm, explanation.
    step_due        jsonb       NOT NULL,
    cause_event_id  uuid        NOT NULL,
    correlation_id  uuid        NOT NULL,
    -- The E.164 number dialled (normalised), or the raw phone when it was unusable.
    to_number       text,
    -- queued -> dialing -> placed -> ended | skipped
    state           text        NOT NULL CHECK (state IN ('queued', 'dialing', 'placed', 'ended', 'skipped')),
    not_before      timestamptz NOT NULL,
    -- Why it waited (outside the window) or was skipped, in words.
    fence_log       jsonb       NOT NULL DEFAULT '[]',
    skip_reason     text,
    placed_at       timestamptz,
    provider_sid    text,
    provider_status text,
    answered_by     text,
    duration_secs   integer,
    outcome         text CHECK (outcome IN ('completed', 'no_answer', 'voicemail', 'failed')),
    detail          text,
    script          text        NOT NULL,
    language        text        NOT NULL DEFAULT 'en',
    promised_date   date,
    recording_url   text,
    recording_sid   text,
    transcription   text,
    ended_at        timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX calls_due ON calls (not_before) WHERE state = 'queued';
CREATE INDEX calls_invoice ON calls (firm_id, invoice_id, placed_at);
CREATE INDEX calls_to ON calls (to_number, placed_at) WHERE placed_at IS NOT NULL;
CREATE UNIQUE INDEX calls_sid ON calls (provider_sid) WHERE provider_sid IS NOT NULL;

-- The conversation: agent and client turns in order.
CREATE TABLE call_turns (
    call_id   uuid        NOT NULL REFERENCES calls (id),
    seq       integer     NOT NULL,
    -- The gather turn a client turn answered (agent turns: the turn they ask).
    turn      integer     NOT NULL,
    speaker   text        NOT NULL CHECK (speaker IN ('agent', 'client')),
    text      text        NOT NULL,
    intent    text,
    evidence  text,
    at        timestamptz NOT NULL,
    PRIMARY KEY (call_id, seq)
);
CREATE UNIQUE INDEX call_turns_client ON call_turns (call_id, turn) WHERE speaker = 'client';

-- Every status callback, as received.
CREATE TABLE call_statuses (
    call_id     uuid        NOT NULL REFERENCES calls (id),
    status      text        NOT NULL,
    sequence    integer,
    answered_by text,
    duration    integer,
    received_at timestamptz NOT NULL
);
CREATE INDEX call_statuses_call ON call_statuses (call_id);

-- One text per step.
CREATE TABLE texts (
    id               uuid        PRIMARY KEY,
    step_id          uuid        NOT NULL UNIQUE,
    firm_id          uuid        NOT NULL,
    invoice_id       uuid        NOT NULL,
    contact_id       uuid        NOT NULL,
    client_id        uuid        NOT NULL,
    step             text        NOT NULL,
    attempt          integer     NOT NULL,
    step_due         jsonb       NOT NULL,
    cause_event_id   uuid        NOT NULL,
    correlation_id   uuid        NOT NULL,
    to_number        text,
    -- queued -> sending -> sent (-> failed on a delivery failure) | failed | skipped
    state            text        NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'skipped')),
    not_before       timestamptz NOT NULL,
    fence_log        jsonb       NOT NULL DEFAULT '[]',
    skip_reason      text,
    body             text,
    template         text,
    template_version integer,
    message_sid      text,
    provider_status  text,
    error_code       text,
    detail           text,
    sent_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX texts_due ON texts (not_before) WHERE state = 'queued';
CREATE INDEX texts_invoice ON texts (firm_id, invoice_id);
CREATE INDEX texts_to ON texts (to_number, sent_at) WHERE sent_at IS NOT NULL;

-- Every inbound text once (MessageSid), matched or not, with the answer given.
CREATE TABLE inbound_texts (
    message_sid  text        PRIMARY KEY,
    from_number  text        NOT NULL,
    to_number    text,
    body         text        NOT NULL,
    firm_id      uuid,
    contact_id   uuid,
    invoice_id   uuid,
    matched_by   text,
    kind         text        NOT NULL,
    intent       text,
    reply_id     uuid,
    response     text        NOT NULL,
    received_at  timestamptz NOT NULL
);
