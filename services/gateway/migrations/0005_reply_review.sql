-- Issue 13: a reply not understood with confidence waits for a firm user's label; the label
-- (a labelled reply.classified for the same reply) replaces the classifier's intent here.
ALTER TABLE replies
    ADD COLUMN needs_review boolean NOT NULL DEFAULT false,
    ADD COLUMN labelled_by  text;
