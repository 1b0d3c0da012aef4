-- A product's chart of the last 24 hours reads its attempts of the window by this index,
-- in time proportional to those attempts (not to every delivery queued meanwhile).
ALTER TABLE delivery_attempts ADD COLUMN product_id TEXT;
UPDATE delivery_attempts SET product_id =
    (SELECT d.product_id FROM deliveries d WHERE d.delivery_id = delivery_attempts.delivery_id);
CREATE INDEX delivery_attempts_product ON delivery_attempts (product_id, attempted_at);
