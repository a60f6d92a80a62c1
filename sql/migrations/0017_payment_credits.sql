-- Credits the console applied by hand for a paid Stripe checkout session whose webhook never
-- credited the user (the AGIS manual's "Payment Webhook Failure": "manual credit application").
-- One row per session, ever: the primary key on the session and the unique payment intent are
-- what make a manual credit idempotent, whichever console applies it and however often it is
-- retried. The row is written in the transaction that inserts the credit_transactions row it
-- names, so neither exists without the other.

CREATE TABLE ops.payment_credits (
    session_id            text PRIMARY KEY CHECK (session_id LIKE 'cs\_%'),
    payment_intent        text UNIQUE,
    user_id               text NOT NULL,
    credits               integer NOT NULL CHECK (credits > 0),
    amount_cents          integer NOT NULL CHECK (amount_cents >= 0),
    currency              text NOT NULL,
    credit_transaction_id bigint NOT NULL,
    operator              text NOT NULL,
    at                    timestamptz NOT NULL DEFAULT now()
);

-- Append-only, as the audit log is: a wrong credit is corrected by another transaction.
CREATE FUNCTION ops.payment_credits_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ops.payment_credits is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER payment_credits_no_update BEFORE UPDATE OR DELETE ON ops.payment_credits
    FOR EACH ROW EXECUTE FUNCTION ops.payment_credits_refuse_change();
CREATE TRIGGER payment_credits_no_truncate BEFORE TRUNCATE ON ops.payment_credits
    FOR EACH STATEMENT EXECUTE FUNCTION ops.payment_credits_refuse_change();

GRANT SELECT ON ops.payment_credits TO ops_runtime;
GRANT INSERT (session_id, payment_intent, user_id, credits, amount_cents, currency,
              credit_transaction_id, operator)
    ON ops.payment_credits TO ops_runtime;
