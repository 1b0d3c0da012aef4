-- SPEC section 10: every change of a customer's permission to contact, append-only,
-- written in the transaction of the change (and erased with the person).
CREATE TABLE consent_history (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    scope              TEXT NOT NULL,
    customer_id        TEXT NOT NULL,
    granted            INTEGER NOT NULL,
    at                 TEXT NOT NULL,
    legal_basis        TEXT NOT NULL,
    method             TEXT,
    consent_text       TEXT,
    source_product_id  TEXT,
    source_key_id      TEXT NOT NULL,
    via                TEXT NOT NULL       -- create | update | merge | import
);
CREATE INDEX consent_history_customer ON consent_history (customer_id, seq);
