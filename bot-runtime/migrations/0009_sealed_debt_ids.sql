-- Debt (account) identifiers at rest (issue 8): `leads.debt_id` and `attempts.debt_id` hold the
-- blind index of the identifier (HMAC-SHA256, as `phone` does), so the per-debt frequency cap
-- still finds a debt's attempts by equality; `leads.debt_id_enc` holds the identifier sealed
-- (AES-256-GCM). Existing plain identifiers are converted by the store's reseal on first open.
-- Same conventions as 0001–0008.

ALTER TABLE leads ADD COLUMN debt_id_enc TEXT;

-- Work the store does once, on the next open, because SQL cannot do it (it needs the keys).
CREATE TABLE store_tasks (
    name TEXT NOT NULL PRIMARY KEY
);
INSERT INTO store_tasks (name) VALUES ('seal_debt_ids');
