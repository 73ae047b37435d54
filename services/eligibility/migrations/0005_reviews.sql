-- Replies a person must label before automation acts on them (issue 13): `reply.classified` with
-- `needs_review` (not an opt-out, not labelled). Each pauses its invoice (`no_reply_awaiting_review`
-- fails) until the labelled `reply.classified` of the same reply arrives (`labelled_by` set), or a
-- person takes the review case over (paused, or resolved with continue_automation).
CREATE TABLE reply_reviews (
    reply_id     uuid        PRIMARY KEY,
    firm_id      uuid        NOT NULL,
    invoice_id   uuid        NOT NULL,
    -- The client's words as quoted in the check (the evidence phrase, else the text).
    evidence     text        NOT NULL,
    received_at  timestamptz NOT NULL,
    -- Set once a person decided: the label (NULL when they resumed without one), who, when.
    -- A labelled reply that overtakes its unsure one creates the row already resolved.
    label        text,
    resolved_by  text,
    resolved_at  timestamptz
);
CREATE INDEX reply_reviews_pending ON reply_reviews (invoice_id) WHERE resolved_at IS NULL;

ALTER TABLE invoices
    -- Pending reviews of the invoice's replies, and the latest one's words (for the check detail).
    ADD COLUMN reviews_pending integer NOT NULL DEFAULT 0,
    ADD COLUMN review_evidence text;
