-- A product's chart of the last 24 hours reads its attempts of the window by this index,
-- in time proportional to those attempts (not to every delivery queued meanwhile).
ALTER TABLE delivery_attempts ADD COLUMN product_id TEXT;
UPDATE delivery_attempts a SET product_id = d.product_id
    FROM deliveries d WHERE d.delivery_id = a.delivery_id;
CREATE INDEX delivery_attempts_product ON delivery_attempts (product_id, attempted_at);
-- The 30-day purge finds old deliveries by a BRIN index (rows arrive in time order). A
-- b-tree on `created` alone offered the planner a wrong path for the delivery log (walk
-- every product's deliveries newest first, filtering for one product) that it took on
-- large tables; a BRIN index gives no order, so the log stays on deliveries_product.
DROP INDEX deliveries_created;
CREATE INDEX deliveries_created ON deliveries USING brin (created);
