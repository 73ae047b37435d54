-- Payments seen, so a reminder whose `sent` event arrives after the payment's (the two travel on
-- different streams and consumers) still produces the "paid after outreach" notice (issue 14).
CREATE TABLE invoice_payments (
    invoice_id uuid        PRIMARY KEY,
    firm_id    uuid        NOT NULL,
    -- The billing.invoice_paid envelope, to build the notice from whichever event comes last.
    envelope   jsonb       NOT NULL,
    paid_at    timestamptz NOT NULL
);
