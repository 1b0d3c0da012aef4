-- Listing partners, and products (all, or one partner's), pages in (created, id) order.
CREATE INDEX partners_created ON partners (created, partner_id);
CREATE INDEX products_partner_created ON products (partner_id, created, product_id);
CREATE INDEX products_created ON products (created, product_id);
DROP INDEX products_partner;
