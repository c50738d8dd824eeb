-- Retention (issue 8): how long recordings and transcripts are kept, for the whole deployment
-- (one row), and when each call's recording and transcript were purged. Purging deletes the
-- recording file and clears the call's recording columns; it replaces each transcript line's text
-- and the call's slot values with empty ones, keeping what reports count (turns, intents,
-- sentiment, the flow path, outcomes). Same conventions as 0001–0006.

CREATE TABLE retention_policy (
    id               TEXT NOT NULL PRIMARY KEY CHECK (id = 'global'),
    -- NULL: kept until deleted by hand.
    recordings_days  BIGINT,
    transcripts_days BIGINT,
    updated_at_us    BIGINT NOT NULL,
    updated_by       TEXT NOT NULL
);

ALTER TABLE calls ADD COLUMN recording_purged_at_us BIGINT;
ALTER TABLE calls ADD COLUMN transcript_purged_at_us BIGINT;
CREATE INDEX calls_by_ended ON calls (ended_at_us);
