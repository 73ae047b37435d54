-- The answer given to each gather turn of a call, so a gather the provider delivers again (a
-- retry after a timeout or a lost answer) gets the same TwiML and records nothing twice.
CREATE TABLE call_gathers (
    call_id     uuid        NOT NULL REFERENCES calls (id),
    turn        integer     NOT NULL,
    response    text        NOT NULL,
    answered_at timestamptz NOT NULL,
    PRIMARY KEY (call_id, turn)
);
