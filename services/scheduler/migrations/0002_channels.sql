-- Issue 6: calls and texts in the cadence.
-- A step's channel (email | voice | sms), which try it is (a call retried after no answer
-- counts up), how many tries its base step allows, and the base step a retry or an email
-- fallback follows up (NULL for a step planned from the policy).
ALTER TABLE steps
    ADD COLUMN channel      text    NOT NULL DEFAULT 'email',
    ADD COLUMN attempt      integer NOT NULL DEFAULT 1,
    ADD COLUMN max_attempts integer NOT NULL DEFAULT 1,
    ADD COLUMN retry_of     uuid    REFERENCES steps (step_id);
