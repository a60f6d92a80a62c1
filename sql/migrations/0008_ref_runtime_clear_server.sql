-- Cancel-and-refund with "delete the panel server" clears the order's server once the panel
-- has deleted it (sql/queries/orders.sql clear_order_server): the runtime role may change
-- exactly those two columns too.
GRANT UPDATE (pterodactyl_server_id, pterodactyl_server_identifier) ON orders TO ops_runtime;
