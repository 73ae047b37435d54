-- What clients answered (`reply.classified`), acted on per invoice. Kept in columns of
-- their own so an invoice snapshot from the gateway (`billing.invoice_upserted`) never
-- clears them.

ALTER TABLE invoices
    -- The client disputes the invoice in a reply. Separate from `disputed` (Stripe or the
    -- firm), which every snapshot overwrites. Cleared by a person (escalation, issue #5).
    ADD COLUMN client_dispute_evidence text,
    ADD COLUMN client_dispute_reply_id uuid,
    ADD COLUMN client_dispute_at       timestamptz,
    -- Handed to a person (payment_plan, question, wrong_contact): `no_open_escalation` fails
    -- until the escalation service (issue #5) resolves it (`escalation.resolved` clears these).
    ADD COLUMN handoff_intent          text,
    ADD COLUMN handoff_evidence        text,
    ADD COLUMN handoff_reply_id        uuid,
    ADD COLUMN handoff_at              timestamptz,
    -- The reply behind the current pause (promise_to_pay / already_paid); NULL when the
    -- pause came from `billing.invoice_paused`.
    ADD COLUMN pause_evidence          text,
    ADD COLUMN pause_reply_id          uuid,
    ADD COLUMN pause_reply_at          timestamptz,
    ADD COLUMN promised_date           date,
    -- The latest payment promise that expired unpaid (a `PromiseBroken` payload), and the
    -- `pause_version` it was recorded for: once per promise.
    ADD COLUMN broken_promise          jsonb,
    ADD COLUMN broken_pause_version    bigint,
    -- The last reply that changed something, for the record.
    ADD COLUMN last_reply_id           uuid,
    ADD COLUMN last_reply_intent       text,
    ADD COLUMN last_reply_evidence     text,
    ADD COLUMN last_reply_at           timestamptz;
