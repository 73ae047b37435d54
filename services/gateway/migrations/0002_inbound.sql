-- Inbound webhooks (email now, telephony later) authenticate with their own per-firm
-- tokens: a mail provider holding one can post messages, not read or change records.
ALTER TABLE api_keys ADD COLUMN scope text NOT NULL DEFAULT 'api' CHECK (scope IN ('api', 'inbound'));

-- Every raw inbound message once per firm (a provider retrying a webhook is the same bytes).
CREATE TABLE inbound_messages (
    firm_id     uuid        NOT NULL REFERENCES firms (id),
    sha256      text        NOT NULL,
    reply_id    uuid        NOT NULL UNIQUE,
    channel     text        NOT NULL,
    size        bigint      NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (firm_id, sha256)
);
