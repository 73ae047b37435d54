-- The firm's own calling/texting window (issue 6), inside the 08:00-21:00 fence; NULL = the default.
ALTER TABLE firms ADD COLUMN call_window jsonb;
