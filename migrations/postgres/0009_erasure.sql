-- SPEC section 10, erasure: the receipt of each erasure (ids only, kept past the 30-day
-- purge) with each product's status; suppressed identifiers as keyed hashes; the hub's
-- own secrets (the key of those hashes, generated once per deployment).
ALTER TABLE customers ADD COLUMN erasure_id TEXT;

CREATE TABLE erasures (
    erasure_id            TEXT PRIMARY KEY,
    account_id            TEXT NOT NULL,
    customer_id           TEXT NOT NULL,
    requested             TIMESTAMPTZ NOT NULL,
    requested_by_key      TEXT NOT NULL,
    requested_by_product  TEXT,
    reason                TEXT,
    suppressed            BOOLEAN NOT NULL,
    completed             TIMESTAMPTZ
);
CREATE INDEX erasures_account ON erasures (account_id, requested, erasure_id);
CREATE INDEX erasures_open ON erasures (requested) WHERE completed IS NULL;

CREATE TABLE erasure_products (
    erasure_id    TEXT NOT NULL REFERENCES erasures (erasure_id),
    product_id    TEXT NOT NULL,
    status        TEXT NOT NULL,     -- pending | acknowledged | failed | unreachable | requester
    delivery_id   TEXT,
    acknowledged  TIMESTAMPTZ,
    error         TEXT,
    -- A keyed hash of the product's id for the customer, so that the id, released, still
    -- answers 404 with the erasure_id (and holds nothing readable).
    vendor_digest TEXT,
    PRIMARY KEY (erasure_id, product_id)
);
CREATE INDEX erasure_products_pending ON erasure_products (erasure_id) WHERE status = 'pending';
CREATE INDEX erasure_products_vendor ON erasure_products (product_id, vendor_digest);

CREATE TABLE suppressions (
    account_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,       -- email | phone
    digest      TEXT NOT NULL,       -- HMAC-SHA-256 of the normalized value, hub_secrets key
    created     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, kind, digest)
);

CREATE TABLE hub_secrets (
    name   TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
