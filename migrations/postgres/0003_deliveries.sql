-- Webhook delivery: one row per (event, receiving product), written in the event's own
-- transaction (the outbox), claimed with leases by any number of dispatchers.

-- Secret rotation keeps the previous secret valid for a while; a webhook failing with no
-- success since `webhook_failing_since` for 5 days is disabled.
ALTER TABLE products ADD COLUMN previous_webhook_secret TEXT;
ALTER TABLE products ADD COLUMN previous_secret_expires TIMESTAMPTZ;
ALTER TABLE products ADD COLUMN webhook_failing_since TIMESTAMPTZ;

-- The feed pages by (txid, seq) and shows only events of transactions older than every
-- running one, so a reader never skips an event that commits late with a smaller seq.
ALTER TABLE events ADD COLUMN txid BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint);
CREATE INDEX events_account_txid ON events (account_id, txid, seq);
CREATE INDEX events_created ON events (created);

CREATE TABLE deliveries (
    delivery_id    TEXT PRIMARY KEY,
    product_id     TEXT NOT NULL REFERENCES products (product_id),
    account_id     TEXT NOT NULL,
    customer_id    TEXT NOT NULL,
    event_seq      BIGINT NOT NULL REFERENCES events (seq),
    version        BIGINT NOT NULL,
    status         TEXT NOT NULL,      -- pending | delivered | failed | superseded
    attempts       INTEGER NOT NULL,
    next_attempt   TIMESTAMPTZ NOT NULL,
    lease_until    TIMESTAMPTZ,        -- claimed by a dispatcher until then
    created        TIMESTAMPTZ NOT NULL,
    updated        TIMESTAMPTZ NOT NULL
);
-- Claiming: due pending deliveries.
CREATE INDEX deliveries_due ON deliveries (next_attempt) WHERE status = 'pending';
-- Ordering and coalescing per (product, customer).
CREATE INDEX deliveries_pair ON deliveries (product_id, customer_id, version) WHERE status = 'pending';
-- The delivery log.
CREATE INDEX deliveries_product ON deliveries (product_id, created, delivery_id);
CREATE INDEX deliveries_product_customer ON deliveries (product_id, customer_id, created);
CREATE INDEX deliveries_created ON deliveries (created);

CREATE TABLE delivery_attempts (
    delivery_id    TEXT NOT NULL REFERENCES deliveries (delivery_id) ON DELETE CASCADE,
    attempt        INTEGER NOT NULL,
    attempted_at   TIMESTAMPTZ NOT NULL,
    response_code  INTEGER,
    latency_ms     BIGINT NOT NULL,
    response_body  TEXT,
    error          TEXT,
    PRIMARY KEY (delivery_id, attempt)
);
