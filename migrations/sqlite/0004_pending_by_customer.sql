-- Pending deliveries by customer first: a write supersedes its customer's older pending
-- deliveries (customer_id known, product_id not), and claims look up a (product,
-- customer) pair; one index serves both. Led by product_id, the old index made each
-- write scan every pending delivery of the database.
DROP INDEX deliveries_pair;
CREATE INDEX deliveries_pending_customer ON deliveries (customer_id, product_id, version) WHERE status = 'pending';
