-- Call records: one row per call in `calls`, one row per transcript line in `call_turns`.
--
-- Portable SQL: this file runs unchanged on SQLite and PostgreSQL (bot-runtime/src/store.rs says
-- why). Column types are limited to TEXT, BIGINT and DOUBLE PRECISION, the types both engines
-- (and sqlx's `Any` driver) agree on:
-- - wall-clock times are BIGINT microseconds since the Unix epoch, UTC (`*_at_us`), so ordering
--   and range filters are integer comparisons on both engines;
-- - booleans are BIGINT 0/1 (sqlx's Any driver cannot read SQLite BOOLEAN columns);
-- - lists and JSON values are JSON text (`*_json`).
-- `campaign` and `lead_id` are plain text for now; tenants, campaigns, leads, attempts and the DNC
-- list come in later migrations, which may add foreign keys beside these columns.

CREATE TABLE calls (
    id                    TEXT NOT NULL PRIMARY KEY,
    direction             TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    campaign              TEXT,
    lead_id               TEXT,
    phone                 TEXT NOT NULL,
    flow                  TEXT NOT NULL,
    flow_version          BIGINT NOT NULL,
    sip_call_id           TEXT,
    started_at_us         BIGINT NOT NULL,
    answered_at_us        BIGINT,
    ended_at_us           BIGINT NOT NULL,
    disposition           TEXT NOT NULL,
    outcome               TEXT,
    amd                   TEXT,
    ended_by              TEXT,
    path_json             TEXT NOT NULL,
    slots_json            TEXT NOT NULL,
    -- The recording: all four NULL when the call was not recorded.
    recording_path        TEXT,
    recording_sha256      TEXT,
    recording_duration_ms BIGINT,
    recording_bytes       BIGINT,
    -- When this row was last written (a second save of the same id replaces the call).
    saved_at_us           BIGINT NOT NULL
);

-- Newest first over everything, and within each filter.
CREATE INDEX calls_by_started ON calls (started_at_us, id);
CREATE INDEX calls_by_campaign ON calls (campaign, started_at_us);
CREATE INDEX calls_by_phone ON calls (phone, started_at_us);
CREATE INDEX calls_by_outcome ON calls (outcome, started_at_us);
CREATE INDEX calls_by_disposition ON calls (disposition, started_at_us);
CREATE INDEX calls_by_lead ON calls (lead_id);

CREATE TABLE call_turns (
    call_id             TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    seq                 BIGINT NOT NULL,
    speaker             TEXT NOT NULL CHECK (speaker IN ('bot', 'customer')),
    text                TEXT NOT NULL,
    start_ms            BIGINT NOT NULL,
    end_ms              BIGINT NOT NULL,
    step                TEXT,
    intent              TEXT,
    confidence          DOUBLE PRECISION,
    sentiment           DOUBLE PRECISION,
    interrupted         BIGINT NOT NULL CHECK (interrupted IN (0, 1)),
    -- StageLatency of the robot's answer to this line: all six NULL when there is none.
    latency_endpoint_ms BIGINT,
    latency_asr_ms      BIGINT,
    latency_nlu_ms      BIGINT,
    latency_flow_ms     BIGINT,
    latency_tts_ms      BIGINT,
    latency_total_ms    BIGINT,
    PRIMARY KEY (call_id, seq)
);
