-- The abandon ledger of human and blended campaigns (issue 6): per campaign and UTC day, the calls
-- answered by a person and, of those, the ones abandoned (no agent within the 2 s safe harbour;
-- for blended campaigns, transfers no agent took). The 30-day abandon rate the pacer holds under
-- its target is read from here, so a restarted node, or a second node on the campaign, carries
-- on from the same rate. Same conventions as 0001-0003: TEXT, BIGINT and DOUBLE PRECISION only,
-- times in microseconds since the Unix epoch (UTC).

CREATE TABLE campaign_abandons (
    tenant        TEXT NOT NULL,
    campaign      TEXT NOT NULL,
    -- The UTC day: its first microsecond.
    day_us        BIGINT NOT NULL,
    live_answered BIGINT NOT NULL,
    abandoned     BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    PRIMARY KEY (tenant, campaign, day_us),
    FOREIGN KEY (tenant, campaign) REFERENCES campaigns (tenant, id)
);
