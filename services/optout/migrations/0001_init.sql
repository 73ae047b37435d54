-- The consent ledger (append-only) and the contacts read model.

-- Contacts from billing.contact_upserted: which firm and client a contact belongs to,
-- and the email/phone a suppression list is exported or imported by.
CREATE TABLE contacts (
    contact_id uuid        PRIMARY KEY,
    firm_id    uuid        NOT NULL,
    client_id  uuid        NOT NULL,
    version    bigint      NOT NULL,
    name       text        NOT NULL,
    email      text,
    phone      text,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_firm_email ON contacts (firm_id, lower(email));

-- Every opt-out and opt-in ever recorded. Never updated, never deleted: the current state of a
-- contact's channel is its latest entry for that channel or for every channel (channel NULL).
CREATE TABLE consent_ledger (
    -- Order of appends (per contact, appends are serialised by an advisory lock).
    seq            bigint      GENERATED ALWAYS AS IDENTITY UNIQUE,
    id             uuid        PRIMARY KEY,
    firm_id        uuid        NOT NULL,
    contact_id     uuid        NOT NULL,
    client_id      uuid        NOT NULL,
    -- NULL = every channel.
    channel        text        CHECK (channel IN ('email', 'voice', 'sms')),
    action         text        NOT NULL CHECK (action IN ('opt_out', 'opt_in')),
    source         text        NOT NULL CHECK (source IN ('email_reply', 'spam_complaint', 'hard_bounce',
                                   'unsubscribe_link', 'firm_user', 'csv_import', 'call_request', 'sms_stop')),
    actor          text        NOT NULL,
    -- The client's words, the link's token hash, the bounce status, the firm user's reason.
    evidence       text        NOT NULL,
    -- The event that caused it (reply.classified, command), when there was one.
    cause_event_id uuid,
    -- Whether it changed the contact's state (only then was a consent event published).
    changed        boolean     NOT NULL,
    -- The holds bucket revision written (opt-out) or released (opt-in) for it.
    hold_revision  bigint,
    recorded_at    timestamptz NOT NULL,
    CHECK (action = 'opt_out' OR (source = 'firm_user' AND length(btrim(evidence)) > 0))
);
CREATE INDEX consent_ledger_contact ON consent_ledger (contact_id, seq);
CREATE INDEX consent_ledger_firm ON consent_ledger (firm_id, seq);

CREATE FUNCTION consent_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consent_ledger is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER consent_ledger_no_update_delete
    BEFORE UPDATE OR DELETE ON consent_ledger
    FOR EACH ROW EXECUTE FUNCTION consent_ledger_append_only();
CREATE TRIGGER consent_ledger_no_truncate
    BEFORE TRUNCATE ON consent_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION consent_ledger_append_only();
