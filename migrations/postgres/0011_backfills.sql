-- SPEC section 11, catching up: backfills (a durable job per activation that queues a
-- snapshot of every live customer, a chunk at a time) and snapshot deliveries, which
-- have no event row (their data is the customer as it is when sent).
ALTER TABLE deliveries ALTER COLUMN event_seq DROP NOT NULL;
ALTER TABLE deliveries ADD COLUMN backfill_id TEXT;   -- set for a snapshot
-- Live deliveries are claimed before snapshots: an index for each.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt) WHERE status = 'pending' AND backfill_id IS NULL;
CREATE INDEX deliveries_due_snapshots ON deliveries (next_attempt) WHERE status = 'pending' AND backfill_id IS NOT NULL;
CREATE INDEX deliveries_backfill ON deliveries (backfill_id, status) WHERE backfill_id IS NOT NULL;

CREATE TABLE backfills (
    backfill_id     TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    product_id      TEXT NOT NULL,
    status          TEXT NOT NULL,      -- running | completed | cancelled
    total           BIGINT NOT NULL,    -- live customers when it started
    queued          BIGINT NOT NULL,    -- snapshots queued so far
    -- The keyset of the last customer queued (the live-by-created index's order).
    queued_created  TIMESTAMPTZ,
    queued_id       TEXT,
    all_queued      BOOLEAN NOT NULL,
    started         TIMESTAMPTZ NOT NULL,
    completed       TIMESTAMPTZ
);
CREATE INDEX backfills_pair ON backfills (account_id, product_id, started);
CREATE INDEX backfills_running ON backfills (started) WHERE status = 'running';
