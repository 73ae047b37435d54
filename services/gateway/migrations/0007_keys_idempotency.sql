-- Keys a firm can manage (issue 15): a name, what the key may do, an expiry, when it was last
-- used, and the key that replaced it in a rotation. Keys created before this migration keep what
-- they could do (everything): they become `admin`.
ALTER TABLE api_keys
    ADD COLUMN name         text        NOT NULL DEFAULT '',
    ADD COLUMN access       text        NOT NULL DEFAULT 'admin' CHECK (access IN ('read', 'write', 'admin')),
    ADD COLUMN expires_at   timestamptz,
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN replaced_by  uuid;
CREATE INDEX api_keys_firm ON api_keys (firm_id, scope, id);

-- What happened to a firm's keys and tokens, for the firm to read (never the key itself).
CREATE TABLE key_events (
    id           uuid        PRIMARY KEY,
    firm_id      uuid        NOT NULL REFERENCES firms (id),
    key_id       uuid        NOT NULL REFERENCES api_keys (id),
    -- created, revoked, rotated (the old key; `detail.replaced_by`), expiry_set
    action       text        NOT NULL,
    -- The key that did it; NULL: the operator (firm creation).
    actor_key_id uuid,
    detail       jsonb       NOT NULL DEFAULT '{}',
    at           timestamptz NOT NULL
);
CREATE INDEX key_events_firm ON key_events (firm_id, id);

-- Idempotency-Key is claimed before the handler runs (state in_flight) and completed in the
-- handler's own transaction, bound to a hash of the method, path and body. Responses are stored
-- without secrets. Rows written before this held plaintext keys and tokens: they go.
DELETE FROM idempotency_keys;
ALTER TABLE idempotency_keys
    ADD COLUMN method       text NOT NULL DEFAULT 'POST',
    ADD COLUMN request_hash text NOT NULL DEFAULT '',
    ADD COLUMN state        text NOT NULL DEFAULT 'done' CHECK (state IN ('in_flight', 'done')),
    ALTER COLUMN status DROP NOT NULL,
    ALTER COLUMN body DROP NOT NULL;
