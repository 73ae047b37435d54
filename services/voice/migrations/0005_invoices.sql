-- The firm's invoices as the gateway publishes them (`billing.invoice_upserted`): the read API
-- answers 404 for an invoice filter naming another firm's (or an unknown) invoice, and 200 with
-- an empty list for the firm's own invoice that has no calls or texts yet.
CREATE TABLE invoices (
    invoice_id uuid PRIMARY KEY,
    firm_id uuid NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- The firm's lists, in id order (ids are UUIDv7: creation order), with or without an invoice.
CREATE INDEX calls_firm_id ON calls (firm_id, id);
CREATE INDEX calls_firm_invoice_id ON calls (firm_id, invoice_id, id);
CREATE INDEX texts_firm_id ON texts (firm_id, id);
CREATE INDEX texts_firm_invoice_id ON texts (firm_id, invoice_id, id);
