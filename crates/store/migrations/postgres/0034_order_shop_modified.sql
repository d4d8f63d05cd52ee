-- When the shop last modified an order (WooCommerce's `date_modified_gmt`), so a delivery that
-- arrives after a newer one (WooCommerce retries failed deliveries later, and two updates can
-- race) cannot put an older state back or send a notification for it. NULL: the shop did not
-- say (older rows, or a plugin that leaves the field out).
ALTER TABLE integration_orders ADD COLUMN shop_modified_at timestamptz;
