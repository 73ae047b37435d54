-- Replies: every email we send carries a reply token (Reply-To: reply+<token>@<reply domain>)
-- and a Message-ID, so an answer, a bounce or a complaint finds the email it is about.
ALTER TABLE emails ADD COLUMN client_id uuid;
ALTER TABLE emails ADD COLUMN reply_token text;
CREATE UNIQUE INDEX emails_reply_token ON emails (reply_token) WHERE reply_token IS NOT NULL;
CREATE INDEX emails_message_id ON emails (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX emails_recipient ON emails (firm_id, lower(to_address));

-- Every inbound message as understood, with what was done about it.
CREATE TABLE replies (
    reply_id      uuid        PRIMARY KEY,
    firm_id       uuid        NOT NULL,
    -- reply | auto_reply | bounce | complaint
    kind          text        NOT NULL,
    intent        text,
    promised_date date,
    evidence      text        NOT NULL,
    sure          boolean     NOT NULL,
    -- reply_token | in_reply_to | sender_address; NULL: unmatched
    matched_by    text,
    email_id      uuid,
    invoice_id    uuid,
    contact_id    uuid,
    from_address  text,
    subject       text,
    message_id    text,
    client_text   text        NOT NULL,
    bounce        jsonb,
    action        text        NOT NULL,
    received_at   timestamptz NOT NULL,
    processed_at  timestamptz NOT NULL
);
CREATE INDEX replies_invoice ON replies (firm_id, invoice_id);

-- Addresses that hard-bounced: the sender suppresses email to them (the service's own copy,
-- checked right before SMTP like the holds).
CREATE TABLE bounced_addresses (
    firm_id  uuid        NOT NULL,
    -- lower case
    address  text        NOT NULL,
    status   text        NOT NULL,
    reply_id uuid        NOT NULL,
    since    timestamptz NOT NULL,
    PRIMARY KEY (firm_id, address)
);
