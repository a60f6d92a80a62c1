-- Indexes for the orders search (issue 10, item 3): each form reads its own index and
-- never filters every order. The prefix indexes cover what the search reads (id,
-- created_at, and the column itself for the LIKE recheck), so a prefix matching
-- thousands of orders is answered from the index alone. They replace 0002's plain ones.
-- On a production database, create these by hand with CREATE INDEX CONCURRENTLY
-- instead (see README, "Production indexes").

-- Server name prefix, case-insensitive.
CREATE INDEX IF NOT EXISTS orders_server_name_search_idx
    ON orders (lower(server_name) text_pattern_ops) INCLUDE (server_name, created_at, id);
DROP INDEX IF EXISTS orders_server_name_lower_idx;

-- Customer email prefix, case-insensitive.
CREATE INDEX IF NOT EXISTS users_email_search_idx
    ON users (lower(email) text_pattern_ops) INCLUDE (email, id);
DROP INDEX IF EXISTS users_email_lower_idx;

-- A customer's orders, newest first (the email search, a user id).
CREATE INDEX IF NOT EXISTS orders_user_created_idx ON orders (user_id, created_at DESC, id DESC);
