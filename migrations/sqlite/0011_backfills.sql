-- no-transaction
-- SPEC section 11, catching up: backfills (a durable job per activation that queues a
-- snapshot of every live customer, a chunk at a time) and snapshot deliveries, which
-- have no event row (their data is the customer as it is when sent). SQLite cannot drop
-- a NOT NULL constraint, so deliveries is rebuilt the way SQLite documents (foreign keys
-- off, new table, copy, drop, rename, indexes, check), in one transaction.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE deliveries_next (
    delivery_id    TEXT PRIMARY KEY,
    product_id     TEXT NOT NULL REFERENCES products (product_id),
    account_id     TEXT NOT NULL,
    customer_id    TEXT NOT NULL,
    event_seq      BIGINT REFERENCES events (seq),   -- NULL for a snapshot
    version        BIGINT NOT NULL,
    status         TEXT NOT NULL,      -- pending | delivered | failed | superseded
    attempts       INTEGER NOT NULL,
    next_attempt   TEXT NOT NULL,
    lease_until    TEXT,
    created        TEXT NOT NULL,
    updated        TEXT NOT NULL,
    backfill_id    TEXT                -- set for a snapshot
);
INSERT INTO deliveries_next (delivery_id, product_id, account_id, customer_id, event_seq,
    version, status, attempts, next_attempt, lease_until, created, updated)
SELECT delivery_id, product_id, account_id, customer_id, event_seq,
    version, status, attempts, next_attempt, lease_until, created, updated FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_next RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries (next_attempt) WHERE status = 'pending' AND backfill_id IS NULL;
CREATE INDEX deliveries_due_snapshots ON deliveries (next_attempt) WHERE status = 'pending' AND backfill_id IS NOT NULL;
CREATE INDEX deliveries_pending_customer ON deliveries (customer_id, product_id, version) WHERE status = 'pending';
CREATE INDEX deliveries_product ON deliveries (product_id, created, delivery_id);
CREATE INDEX deliveries_product_customer ON deliveries (product_id, customer_id, created);
CREATE INDEX deliveries_created ON deliveries (created);
CREATE INDEX deliveries_backfill ON deliveries (backfill_id, status) WHERE backfill_id IS NOT NULL;

CREATE TABLE backfills (
    backfill_id     TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    product_id      TEXT NOT NULL,
    status          TEXT NOT NULL,      -- running | completed | cancelled
    total           BIGINT NOT NULL,    -- live customers when it started
    queued          BIGINT NOT NULL,    -- snapshots queued so far
    -- The keyset of the last customer queued (the live-by-created index's order).
    queued_created  TEXT,
    queued_id       TEXT,
    all_queued      INTEGER NOT NULL,
    started         TEXT NOT NULL,
    completed       TEXT
);
CREATE INDEX backfills_pair ON backfills (account_id, product_id, started);
CREATE INDEX backfills_running ON backfills (started) WHERE status = 'running';
COMMIT;
PRAGMA foreign_keys = ON;
