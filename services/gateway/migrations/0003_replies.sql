-- The firm's reply inbox: every client reply, bounce and complaint as understood (projected from
-- reply.classified), matched to an invoice or not, so nothing a client says is invisible.
CREATE TABLE replies (
    reply_id      uuid        PRIMARY KEY,
    firm_id       uuid        NOT NULL REFERENCES firms (id),
    received_at   timestamptz NOT NULL,
    channel       text        NOT NULL,
    kind          text        NOT NULL,
    intent        text,
    promised_date date,
    evidence      text        NOT NULL,
    client_text   text        NOT NULL,
    invoice_id    uuid,
    contact_id    uuid,
    matched_by    text,
    from_address  text,
    subject       text,
    action        text        NOT NULL
);
CREATE INDEX replies_firm ON replies (firm_id, reply_id);
