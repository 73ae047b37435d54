-- Leases instead of start-up guesses (issue 14). A sender claims rows for itself (`owner`) for a
-- while (`lease_until`, extended by its heartbeat); only rows whose lease expired are judged by
-- anyone else. Two progress marks, written as each SMTP hand-off goes (asynchronous commit, so
-- they cost no fsync), say how far a row got: `handoff_at` just before the message body is sent,
-- `accepted_at` (with `message_id`) once the server accepted it. A row judged after a crash is
-- sent (accepted), uncertain (body sent, no answer seen: at most one per open connection) or
-- simply pending again (never handed over).
ALTER TABLE emails ADD COLUMN owner text;
ALTER TABLE emails ADD COLUMN lease_until timestamptz;
ALTER TABLE emails ADD COLUMN handoff_at timestamptz;
ALTER TABLE emails ADD COLUMN accepted_at timestamptz;
CREATE INDEX emails_sending ON emails (lease_until) WHERE state = 'sending';
