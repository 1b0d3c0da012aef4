-- Customers, their identifiers (for de-duplication), product associations, the event
-- outbox and idempotency keys. Every table carries the customer's scope: its account, or
-- 'product:<id>' for an account-less customer, so every hot query filters by it and the
-- tables can be sharded by it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;

CREATE TABLE customers (
    customer_id            TEXT PRIMARY KEY,
    scope                  TEXT NOT NULL,
    account_id             TEXT REFERENCES accounts (account_id),
    owner_product_id       TEXT REFERENCES products (product_id),
    status                 TEXT NOT NULL,          -- live | deleted | merged | conflict
    first_name             TEXT,
    last_name              TEXT,
    emails                 JSONB NOT NULL,
    phones                 JSONB NOT NULL,
    address                TEXT,
    city                   TEXT,
    state                  TEXT,
    country                TEXT,
    tags                   JSONB NOT NULL,
    permission_to_contact  TIMESTAMPTZ,
    origins                JSONB NOT NULL,
    version                BIGINT NOT NULL,
    created                TIMESTAMPTZ NOT NULL,
    updated                TIMESTAMPTZ NOT NULL,
    deleted                TIMESTAMPTZ,
    merged_into            TEXT,
    conflict               JSONB,
    -- Derived, for sorting and search: lower-cased names ('' when absent), and one
    -- lower-cased text of names, emails and phone digits.
    first_name_sort        TEXT NOT NULL,
    last_name_sort         TEXT NOT NULL,
    search                 TEXT NOT NULL
);
-- Keyset paging of live customers, one index per sort order (read backwards for '-').
CREATE INDEX customers_live_created ON customers (scope, created, customer_id) WHERE status = 'live';
CREATE INDEX customers_live_last_name ON customers (scope, last_name_sort, customer_id) WHERE status = 'live';
CREATE INDEX customers_live_first_name ON customers (scope, first_name_sort, customer_id) WHERE status = 'live';
CREATE INDEX customers_live_updated ON customers (scope, updated) WHERE status = 'live';
-- `q`: substring search within one account.
CREATE INDEX customers_live_search ON customers USING gin (scope, search gin_trgm_ops) WHERE status = 'live';
CREATE INDEX customers_live_tags ON customers USING gin (tags jsonb_path_ops) WHERE status = 'live';
CREATE INDEX customers_conflicts ON customers (scope, created, customer_id) WHERE status = 'conflict';

-- One row per normalized email or phone of a live customer, as the account's dedupe
-- policy indexes them. The primary key is what makes duplicates impossible under
-- concurrency: of racing writers, exactly one inserts the identifier.
CREATE TABLE customer_identifiers (
    scope        TEXT NOT NULL,
    kind         TEXT NOT NULL,  -- email | phone
    value        TEXT NOT NULL,
    customer_id  TEXT NOT NULL REFERENCES customers (customer_id),
    PRIMARY KEY (scope, kind, value)
);
CREATE INDEX customer_identifiers_customer ON customer_identifiers (customer_id);

-- A product's own id for a customer: one per (product, customer), and within one product
-- and scope a vendor id names at most one customer.
CREATE TABLE associations (
    product_id          TEXT NOT NULL REFERENCES products (product_id),
    customer_id         TEXT NOT NULL REFERENCES customers (customer_id),
    scope               TEXT NOT NULL,
    vendor_customer_id  TEXT NOT NULL,
    created             TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (product_id, customer_id)
);
CREATE UNIQUE INDEX associations_vendor_id ON associations (product_id, scope, vendor_customer_id);
CREATE INDEX associations_product_vendor ON associations (product_id, vendor_customer_id);
CREATE INDEX associations_customer ON associations (customer_id);

-- The outbox: one row per change, written in the change's transaction. `vendor_ids`
-- snapshots every product's id for the customer at that moment (a deleted customer's
-- associations are gone by delivery time).
CREATE TABLE events (
    seq                BIGSERIAL PRIMARY KEY,
    event_id           TEXT NOT NULL UNIQUE,
    account_id         TEXT NOT NULL,
    customer_id        TEXT NOT NULL,
    type               TEXT NOT NULL,
    version            BIGINT NOT NULL,
    origin_product_id  TEXT,
    data               JSONB NOT NULL,
    vendor_ids         JSONB NOT NULL,
    created            TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_account ON events (account_id, seq);
CREATE INDEX events_customer ON events (customer_id, seq);

CREATE TABLE idempotency_keys (
    principal        TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    request_hash     TEXT NOT NULL,
    status           INTEGER,          -- NULL while the first request is in flight
    response         JSONB,
    created          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (principal, idempotency_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created);
