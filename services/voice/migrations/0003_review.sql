-- A client turn the classifier did not understand with confidence (issue 13): not acted on; when
-- the caller is still unclear at the end (the last client turns all unclear), the call publishes
-- one `reply.classified` with `needs_review` (the reply id kept on the call, so only once).
ALTER TABLE call_turns ADD COLUMN needs_review boolean NOT NULL DEFAULT false;
ALTER TABLE calls ADD COLUMN review_reply_id uuid;
