-- SPEC section 6, "Back from an outage": a per-product breaker kept in the database, so
-- every server honours it. After 5 consecutive failed attempts the product's deliveries
-- pause; one probe (its oldest due delivery) goes out at each probe_at, the interval
-- growing from 5 s to 50 s; the first 2xx closes it and makes every pending delivery due.
ALTER TABLE products ADD COLUMN breaker_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE products ADD COLUMN breaker_probe_at TIMESTAMPTZ;
ALTER TABLE products ADD COLUMN breaker_interval_s INTEGER;
-- A delivery's attempts that were failed probes: counted in `attempts` (and logged), but
-- spending none of its retries.
ALTER TABLE deliveries ADD COLUMN spared INTEGER NOT NULL DEFAULT 0;
CREATE INDEX products_breaker_open ON products (breaker_probe_at) WHERE breaker_failures >= 5;
-- A paused product's probe: its live delivery due first, else its snapshot due first. The
-- predicates name the kind so that no other query (which asks only for status = 'pending')
-- can pick these product-led indexes: one did, for the claim's per-pair checks, and a
-- claim over 3,000 pending snapshots took 1.5 s.
CREATE INDEX deliveries_product_due ON deliveries (product_id, next_attempt)
    WHERE status = 'pending' AND backfill_id IS NULL;
CREATE INDEX deliveries_product_due_snapshots ON deliveries (product_id, next_attempt)
    WHERE status = 'pending' AND backfill_id IS NOT NULL;
