-- Every change the console makes to a game's price or availability (pricing_config), kept
-- for good: who, when, the state before and after, and why. Written in the same
-- transaction as the change itself, so a price never changes without its row here and a
-- row never describes a change that did not happen. Every row holds the whole state before
-- and after (cost and enabled), so "what was the price on a date" is one row away.

CREATE TABLE ops.pricing_history (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),  -- the change's transaction time
    game_type   text NOT NULL,
    operator    text NOT NULL,
    change      text NOT NULL CHECK (change IN ('price', 'enable', 'disable')),
    old_cost    integer NOT NULL CHECK (old_cost >= 0),
    new_cost    integer NOT NULL CHECK (new_cost >= 0),
    old_enabled boolean NOT NULL,
    new_enabled boolean NOT NULL,
    reason      text NOT NULL CHECK (length(btrim(reason)) BETWEEN 1 AND 2000)
);
CREATE INDEX pricing_history_game_idx ON ops.pricing_history (game_type, at DESC, id DESC);

-- The history is append-only: a wrong change is corrected by another change.
CREATE FUNCTION ops.pricing_history_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ops.pricing_history is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER pricing_history_no_update BEFORE UPDATE OR DELETE ON ops.pricing_history
    FOR EACH ROW EXECUTE FUNCTION ops.pricing_history_refuse_change();
CREATE TRIGGER pricing_history_no_truncate BEFORE TRUNCATE ON ops.pricing_history
    FOR EACH STATEMENT EXECUTE FUNCTION ops.pricing_history_refuse_change();

-- The console reads and appends; a row's id and time come from the table.
GRANT SELECT ON ops.pricing_history TO ops_runtime;
GRANT INSERT (game_type, operator, change, old_cost, new_cost, old_enabled, new_enabled, reason)
    ON ops.pricing_history TO ops_runtime;
GRANT USAGE, SELECT ON SEQUENCE ops.pricing_history_id_seq TO ops_runtime;
