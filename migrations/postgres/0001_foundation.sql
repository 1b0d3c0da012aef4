-- Tenancy: partners, accounts, products, activations and API keys.
CREATE TABLE partners (
    partner_id  TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created     TIMESTAMPTZ NOT NULL
);

CREATE TABLE accounts (
    account_id      TEXT PRIMARY KEY,
    partner_id      TEXT NOT NULL REFERENCES partners (partner_id),
    name            TEXT NOT NULL,
    default_region  TEXT NOT NULL,
    dedupe_policy   TEXT NOT NULL,
    created         TIMESTAMPTZ NOT NULL,
    updated         TIMESTAMPTZ NOT NULL
);
-- Listing a partner's accounts pages in (created, account_id) order.
CREATE INDEX accounts_partner_created ON accounts (partner_id, created, account_id);
CREATE INDEX accounts_created ON accounts (created, account_id);

CREATE TABLE products (
    product_id               TEXT PRIMARY KEY,
    partner_id               TEXT REFERENCES partners (partner_id),
    name                     TEXT NOT NULL,
    webhook_url              TEXT,
    webhook_secret           TEXT NOT NULL,
    webhook_status           TEXT NOT NULL,
    webhook_disabled_reason  TEXT,
    created                  TIMESTAMPTZ NOT NULL,
    updated                  TIMESTAMPTZ NOT NULL
);
CREATE INDEX products_partner ON products (partner_id);

CREATE TABLE activations (
    account_id  TEXT NOT NULL REFERENCES accounts (account_id),
    product_id  TEXT NOT NULL REFERENCES products (product_id),
    sync        TEXT NOT NULL,
    created     TIMESTAMPTZ NOT NULL,
    updated     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (account_id, product_id)
);
-- A product key's reach: the accounts where that product is activated.
CREATE INDEX activations_product ON activations (product_id, account_id);

CREATE TABLE api_keys (
    key_id      TEXT PRIMARY KEY,
    key_hash    TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    partner_id  TEXT REFERENCES partners (partner_id),
    account_id  TEXT REFERENCES accounts (account_id),
    product_id  TEXT REFERENCES products (product_id),
    created     TIMESTAMPTZ NOT NULL,
    revoked     TIMESTAMPTZ
);
CREATE INDEX api_keys_partner ON api_keys (partner_id) WHERE partner_id IS NOT NULL;
CREATE INDEX api_keys_account ON api_keys (account_id) WHERE account_id IS NOT NULL;
CREATE INDEX api_keys_product ON api_keys (product_id) WHERE product_id IS NOT NULL;
