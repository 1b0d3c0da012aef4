-- The listings of issue 15's remaining parts: receipts across accounts by time (what
-- `customer-list erasures` and `reapply-erasures` read after a restore), and an account's
-- suppressions newest first with the erasure that made each (the console's privacy page).
CREATE INDEX erasures_requested ON erasures (requested, erasure_id);
ALTER TABLE suppressions ADD COLUMN erasure_id TEXT;
CREATE INDEX suppressions_by_time ON suppressions (account_id, created, kind, digest);
