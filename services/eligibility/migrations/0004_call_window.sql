-- The firm's calling/texting window from billing.firm_updated (issue 6); NULL = the default window.
ALTER TABLE firms ADD COLUMN call_window jsonb;
