-- Replies arflow did not understand with confidence (issue 13): one `needs_review` case per reply,
-- the reply as received (to republish it with the person's label), and the label once given.
CREATE TABLE reviews (
    case_id        uuid        PRIMARY KEY REFERENCES cases (case_id),
    firm_id        uuid        NOT NULL,
    reply_id       uuid        NOT NULL UNIQUE,
    -- The `reply.classified` payload as the channel service published it.
    reply          jsonb       NOT NULL,
    -- The event it came in: the labelled reply continues its chain.
    cause_event_id uuid        NOT NULL,
    correlation_id uuid        NOT NULL,
    -- A `ReviewLabel` once a person labelled it.
    label          jsonb
);

-- What firm users labelled: one example per reply, in the reply corpus's terms, for training the
-- classifier (`GET /v1/escalations/training-examples`).
CREATE TABLE labelled_replies (
    reply_id       uuid        PRIMARY KEY,
    firm_id        uuid        NOT NULL,
    case_id        uuid        NOT NULL REFERENCES cases (case_id),
    -- email | voice | sms
    channel        text        NOT NULL,
    -- The client's calendar day the reply was written (promised dates are relative to it).
    reference_date date        NOT NULL,
    -- The client's own words (quotes and signature removed).
    text           text        NOT NULL,
    intent         text        NOT NULL,
    -- Only for promise_to_pay.
    promised_date  date,
    labelled_by    text        NOT NULL,
    labelled_at    timestamptz NOT NULL
);
CREATE INDEX labelled_replies_firm ON labelled_replies (firm_id, labelled_at, reply_id);
