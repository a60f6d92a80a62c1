-- Reference copy of the business's own tables (GIVRWRLD schema as the runbooks use it).
-- Applied only on request (demo, tests, `opsconsole migrate --with-reference-schema`),
-- never by default against a production database.

CREATE TABLE IF NOT EXISTS users (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email        text NOT NULL UNIQUE,
    display_name text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS pricing_config (
    game_type     text PRIMARY KEY,
    display_name  text NOT NULL,
    cost_per_hour integer NOT NULL CHECK (cost_per_hour >= 0),  -- credits per hour
    enabled       boolean NOT NULL DEFAULT true,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS plans (
    id            text PRIMARY KEY,
    game          text NOT NULL REFERENCES pricing_config (game_type),
    name          text NOT NULL,
    ram_gb        integer NOT NULL CHECK (ram_gb > 0),
    cpu_cores     integer NOT NULL DEFAULT 2,
    disk_gb       integer NOT NULL DEFAULT 20,
    price_monthly numeric(10, 2) NOT NULL,
    egg_id        integer NOT NULL,
    is_active     boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS ptero_nodes (
    id                   serial PRIMARY KEY,
    name                 text NOT NULL UNIQUE,
    fqdn                 text,
    location             text,
    pterodactyl_node_id  integer,
    max_ram_gb           integer NOT NULL CHECK (max_ram_gb > 0),
    reserved_headroom_gb integer NOT NULL DEFAULT 0 CHECK (reserved_headroom_gb >= 0),
    enabled              boolean NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS orders (
    id                            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id                       uuid NOT NULL REFERENCES users (id),
    plan_id                       text NOT NULL REFERENCES plans (id),
    server_name                   text NOT NULL,
    status                        text NOT NULL DEFAULT 'pending',
    node_id                       integer REFERENCES ptero_nodes (id),
    pterodactyl_server_id         text,
    pterodactyl_server_identifier text,
    stripe_subscription_id        text,
    stripe_payment_intent_id      text,
    amount_cents                  integer,
    error_message                 text,
    created_at                    timestamptz NOT NULL DEFAULT now(),
    updated_at                    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS external_accounts (
    user_id             uuid PRIMARY KEY REFERENCES users (id),
    pterodactyl_user_id integer NOT NULL,
    panel_username      text,
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS credit_transactions (
    id               bigserial PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id),
    amount           integer NOT NULL,
    transaction_type text NOT NULL,  -- purchase, spend, refund, bonus
    description      text,
    stripe_payment_intent_id text,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS orders_user_id_idx ON orders (user_id);
CREATE INDEX IF NOT EXISTS orders_node_id_idx ON orders (node_id);
CREATE INDEX IF NOT EXISTS credit_transactions_user_idx ON credit_transactions (user_id, created_at);
