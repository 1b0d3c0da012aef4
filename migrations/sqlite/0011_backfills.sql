-- SPEC section 11, catching up: backfills (a durable job per activation that queues a
-- snapshot of every live customer, a chunk at a time) and snapshot deliveries, which
-- have no event row (their data is the customer as it is when sent). SQLite cannot drop
-- a NOT NULL constraint, so deliveries is rebuilt. Migrations run in a transaction,
-- where foreign keys cannot be turned off, so its child is rebuilt with it (else
-- dropping deliveries would cascade into the attempts): both new tables are filled,
-- the old ones dropped child first, and the new ones renamed into place (the rename
-- rewrites the attempts' reference to the new name).
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
CREATE TABLE delivery_attempts_next (
    delivery_id    TEXT NOT NULL REFERENCES deliveries_next (delivery_id) ON DELETE CASCADE,
    attempt        INTEGER NOT NULL,
    attempted_at   TEXT NOT NULL,
    response_code  INTEGER,
    latency_ms     BIGINT NOT NULL,
    response_body  TEXT,
    error          TEXT,
    product_id     TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
INSERT INTO delivery_attempts_next (delivery_id, attempt, attempted_at, response_code,
    latency_ms, response_body, error, product_id)
SELECT delivery_id, attempt, attempted_at, response_code, latency_ms, response_body,
    error, product_id FROM delivery_attempts;
DROP TABLE delivery_attempts;
DROP TABLE deliveries;
ALTER TABLE deliveries_next RENAME TO deliveries;
ALTER TABLE delivery_attempts_next RENAME TO delivery_attempts;
CREATE INDEX delivery_attempts_product ON delivery_attempts (product_id, attempted_at);
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
