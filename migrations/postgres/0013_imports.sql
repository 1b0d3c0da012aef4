-- SPEC section 12, imports: a durable job per upload. The file is kept as sent until the
-- import completes (then dropped: it holds personal data that erasure must be able to
-- reach); a worker on any server leases the job, writes its rows in order in batches,
-- and moves the resume point (the byte and line where the next unwritten row starts)
-- with the counters and the batch's failed rows in one transaction.
CREATE TABLE imports (
    import_id       TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    -- Who imports: the key (for the consent history) and its principal.
    key_id          TEXT NOT NULL,
    principal_kind  TEXT NOT NULL,      -- admin | partner | account | product
    principal_id    TEXT,               -- NULL for admin
    on_duplicate    TEXT NOT NULL,
    content         BYTEA NOT NULL,     -- the file as sent; emptied on completion
    delimiter       TEXT NOT NULL,      -- ',' or ';'
    header          TEXT NOT NULL,      -- JSON array: the header row's cells
    mapping         TEXT NOT NULL,      -- JSON array: the field of each column, or null
    status          TEXT NOT NULL,      -- running | completed
    rows_total      BIGINT NOT NULL,
    processed       BIGINT NOT NULL,
    created         BIGINT NOT NULL,
    merged          BIGINT NOT NULL,
    conflicts       BIGINT NOT NULL,
    failed          BIGINT NOT NULL,
    resume_byte     BIGINT NOT NULL,
    resume_line     BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    started         TIMESTAMPTZ NOT NULL,
    completed       TIMESTAMPTZ
);
CREATE INDEX imports_account ON imports (account_id, started, import_id);
CREATE INDEX imports_running ON imports (started) WHERE status = 'running';

-- The failed rows, as sent (a JSON array of the row's cells), with why.
CREATE TABLE import_errors (
    import_id   TEXT NOT NULL REFERENCES imports (import_id) ON DELETE CASCADE,
    line        BIGINT NOT NULL,
    account_id  TEXT NOT NULL,
    cells       TEXT NOT NULL,
    problem     TEXT NOT NULL,
    PRIMARY KEY (import_id, line)
);
