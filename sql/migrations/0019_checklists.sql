-- The operations checklists of both seeds (GIVRWRLD's morning and weekly, AGIS's daily,
-- weekly, monthly and quarterly), walked as runs: each run keeps every item's evidence as it
-- was seen (the figure, the rows, the threshold, pass/warn/fail), who answered the manual
-- items and what, and the sign-off. Once a run is signed off the database refuses any change
-- to it or its items: what was signed is what stays.

CREATE TABLE ops.checklist_runs (
    id             bigserial PRIMARY KEY,
    checklist      text NOT NULL CHECK (checklist IN ('daily', 'weekly', 'monthly', 'quarterly')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    started_by     text NOT NULL,
    signed_off_at  timestamptz,
    signed_off_by  text,
    sign_off_note  text,
    CHECK ((signed_off_at IS NULL) = (signed_off_by IS NULL))
);
-- At most one open (not signed off) run per checklist: every console walks the same one.
CREATE UNIQUE INDEX checklist_runs_one_open ON ops.checklist_runs (checklist) WHERE signed_off_at IS NULL;
CREATE INDEX checklist_runs_by_checklist ON ops.checklist_runs (checklist, started_at DESC, id DESC);

CREATE TABLE ops.checklist_items (
    run_id       bigint NOT NULL REFERENCES ops.checklist_runs (id),
    item         text NOT NULL,
    position     integer NOT NULL,
    title        text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('auto', 'manual')),
    -- auto: pass | warn | fail | not available; manual: pass (done) | fail (not done) | open
    state        text NOT NULL CHECK (state IN ('pass', 'warn', 'fail', 'not available', 'open')),
    figure       text,
    threshold    text,
    evidence     jsonb NOT NULL DEFAULT '{}',
    checked_at   timestamptz NOT NULL DEFAULT now(),
    answered_by  text,
    answered_at  timestamptz,
    note         text CHECK (note IS NULL OR length(note) <= 2000),
    carried_from bigint REFERENCES ops.checklist_runs (id),  -- unresolved in that earlier run
    PRIMARY KEY (run_id, item)
);

CREATE FUNCTION ops.checklist_refuse_signed() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    run_id bigint;
BEGIN
    IF TG_TABLE_NAME = 'checklist_runs' THEN
        IF TG_OP = 'DELETE' OR OLD.signed_off_at IS NOT NULL THEN
            RAISE EXCEPTION 'checklist run % is signed off (or runs are never deleted): % refused', OLD.id, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END IF;
    run_id := CASE WHEN TG_OP = 'INSERT' THEN NEW.run_id ELSE OLD.run_id END;
    IF TG_OP = 'DELETE' OR EXISTS (
        SELECT 1 FROM ops.checklist_runs r WHERE r.id = run_id AND r.signed_off_at IS NOT NULL
    ) THEN
        RAISE EXCEPTION 'checklist run % is signed off (or items are never deleted): % refused', run_id, TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER checklist_runs_signed BEFORE UPDATE OR DELETE ON ops.checklist_runs
    FOR EACH ROW EXECUTE FUNCTION ops.checklist_refuse_signed();
CREATE TRIGGER checklist_items_signed BEFORE INSERT OR UPDATE OR DELETE ON ops.checklist_items
    FOR EACH ROW EXECUTE FUNCTION ops.checklist_refuse_signed();
CREATE FUNCTION ops.checklist_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'checklist runs are kept: TRUNCATE refused' USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER checklist_runs_no_truncate BEFORE TRUNCATE ON ops.checklist_runs
    FOR EACH STATEMENT EXECUTE FUNCTION ops.checklist_refuse_truncate();
CREATE TRIGGER checklist_items_no_truncate BEFORE TRUNCATE ON ops.checklist_items
    FOR EACH STATEMENT EXECUTE FUNCTION ops.checklist_refuse_truncate();

GRANT SELECT ON ops.checklist_runs, ops.checklist_items TO ops_runtime;
GRANT INSERT (checklist, started_by) ON ops.checklist_runs TO ops_runtime;
GRANT UPDATE (signed_off_at, signed_off_by, sign_off_note) ON ops.checklist_runs TO ops_runtime;
GRANT USAGE, SELECT ON SEQUENCE ops.checklist_runs_id_seq TO ops_runtime;
GRANT INSERT (run_id, item, position, title, kind, state, figure, threshold, evidence, checked_at, carried_from)
    ON ops.checklist_items TO ops_runtime;
GRANT UPDATE (state, figure, threshold, evidence, checked_at, answered_by, answered_at, note)
    ON ops.checklist_items TO ops_runtime;
