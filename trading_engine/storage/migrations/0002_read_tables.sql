-- The read tables: what operators and history queries read, in the units users see.
--
-- They are a projection of the journal, nothing more. `project_pending()`
-- projects every journal row committed since the last call, in one
-- transaction that also moves `projection.last_id`, so each row is projected
-- exactly once; the engine calls it after each group commit, off the path of
-- the acknowledgements (the tables lag the journal by about one commit and
-- never lead it). `project_journal(first_id, last_id)` projects any range,
-- which rebuilds them (`trading-engine audit` checks that they agree with a
-- replay).
--
-- Prices and quantities are decimals (ticks x tick_size, lots x lot_size).
-- Money (fees, ledger amounts, balances) is in each asset's minor units, as
-- integers, exactly as the ledger keeps it. Times are timestamptz (UTC).

-- The payload is stored as `json`: the text the engine wrote, kept as it is
-- (the hash chain is over that text), and about a third cheaper to COPY in
-- and to read back than `jsonb`, which parses it into a binary form first.
ALTER TABLE journal ALTER COLUMN payload TYPE json USING payload::json;

CREATE TABLE instruments (
    symbol      text PRIMARY KEY,
    base_asset  text    NOT NULL,
    quote_asset text    NOT NULL,
    tick_size   numeric NOT NULL,
    lot_size    numeric NOT NULL,
    mode        text    NOT NULL,
    definition  jsonb   NOT NULL,   -- every field of the listing, as journaled
    halted      text,               -- the reason while halted, else NULL
    listed_at   timestamptz NOT NULL
);

CREATE TABLE users (
    user_id      text PRIMARY KEY,
    owner        text,              -- linked accounts share an owner
    api_key_hash text NOT NULL,     -- sha256 of the key; the key itself is never stored
    created_at   timestamptz NOT NULL
);

CREATE TABLE orders (
    order_id        bigint PRIMARY KEY,
    symbol          text    NOT NULL,
    user_id         text    NOT NULL,
    client_order_id text,
    side            text    NOT NULL,
    type            text    NOT NULL,
    time_in_force   text    NOT NULL,
    price           numeric,        -- NULL for market and stop orders
    stop_price      numeric,
    quantity        numeric NOT NULL,
    filled          numeric NOT NULL DEFAULT 0,
    remaining       numeric NOT NULL,
    filled_value    numeric NOT NULL DEFAULT 0,  -- sum of price x quantity over the fills
    status          text    NOT NULL,
    reason          text,           -- why it was rejected or cancelled
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX orders_user_id ON orders (user_id, order_id DESC);
CREATE INDEX orders_open ON orders (symbol, user_id)
    WHERE status IN ('open', 'partially_filled', 'pending_trigger');

CREATE TABLE trades (
    symbol            text   NOT NULL,
    trade_id          bigint NOT NULL,
    price             numeric NOT NULL,
    quantity          numeric NOT NULL,
    aggressor         text   NOT NULL,
    maker_order_id    bigint NOT NULL,
    taker_order_id    bigint NOT NULL,
    maker_user_id     text   NOT NULL,
    taker_user_id     text   NOT NULL,
    maker_fee         bigint NOT NULL,   -- quote minor units; negative: a rebate
    taker_fee         bigint NOT NULL,
    executed_at       timestamptz NOT NULL,
    settlement_status text   NOT NULL DEFAULT 'pending',
    settled_at        timestamptz,
    PRIMARY KEY (symbol, trade_id)
);
CREATE INDEX trades_maker ON trades (maker_user_id, executed_at DESC);
CREATE INDEX trades_taker ON trades (taker_user_id, executed_at DESC);
CREATE INDEX trades_pending ON trades (executed_at) WHERE settlement_status = 'pending';

CREATE TABLE ledger_entries (
    posting_id text    NOT NULL,
    kind       text    NOT NULL,   -- trade, deposit, withdrawal, margin
    account    text    NOT NULL,   -- user:<id>, fees, external, clearing, insurance
    asset      text    NOT NULL,
    amount     numeric NOT NULL,   -- minor units; > 0 credits the account
    posted_at  timestamptz NOT NULL,
    PRIMARY KEY (posting_id, account, asset)
);
CREATE INDEX ledger_entries_account ON ledger_entries (account, asset);

CREATE TABLE balances (
    account text    NOT NULL,
    asset   text    NOT NULL,
    amount  numeric NOT NULL,      -- minor units: the sum of the account's ledger entries
    PRIMARY KEY (account, asset)
);

CREATE FUNCTION journal_time(ns bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT timestamptz 'epoch' + (ns / 1000) * interval '1 microsecond' $$;

-- The rows of one commit (or any range), as the projection reads them; inlined by the planner.
CREATE FUNCTION journal_range(first_id bigint, last_id bigint)
RETURNS TABLE (id bigint, stream text, type text, p json, ts bigint)
LANGUAGE sql STABLE
AS $$ SELECT id, stream, type, payload, ts FROM journal WHERE id BETWEEN first_id AND last_id $$;

CREATE FUNCTION project_journal(first_id bigint, last_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT  -- a restore (pg_dump) runs with an empty search_path
-- Planned once: planning each statement anew for every commit cost more than running it.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    types text[];
BEGIN
    -- Each statement reads only the rows of its own event types; a commit
    -- holds few of the types, so the statements for the others are skipped.
    SELECT array_agg(DISTINCT type) INTO types FROM journal_range(first_id, last_id);
    IF types IS NULL THEN
        RETURN;
    END IF;

    -- Symbols and users.
    IF types && ARRAY['InstrumentListed', 'SymbolHalted', 'SymbolResumed', 'UserCreated'] THEN
    INSERT INTO instruments (symbol, base_asset, quote_asset, tick_size, lot_size, mode,
                             definition, listed_at)
    SELECT p->'instrument'->>'symbol', p->'instrument'->>'base_asset',
           p->'instrument'->>'quote_asset', (p->'instrument'->>'tick_size')::numeric,
           (p->'instrument'->>'lot_size')::numeric, p->'instrument'->>'mode',
           (p->'instrument')::jsonb, journal_time(ts)
    FROM journal_range(first_id, last_id) WHERE type = 'InstrumentListed'
    ON CONFLICT (symbol) DO NOTHING;

    UPDATE instruments i SET halted = last.halted
    FROM (
        SELECT DISTINCT ON (p->>'symbol') p->>'symbol' AS symbol,
               CASE WHEN type = 'SymbolHalted' THEN p->>'reason' END AS halted
        FROM journal_range(first_id, last_id) WHERE type IN ('SymbolHalted', 'SymbolResumed')
        ORDER BY p->>'symbol', id DESC
    ) AS last
    WHERE i.symbol = last.symbol;

    INSERT INTO users (user_id, owner, api_key_hash, created_at)
    SELECT p->>'user_id', p->>'owner', p->>'api_key_hash', journal_time(ts)
    FROM journal_range(first_id, last_id) WHERE type = 'UserCreated'
    ON CONFLICT (user_id) DO NOTHING;
    END IF;

    -- Orders: new ones first, then the last word of this batch on each.
    IF types && ARRAY['OrderAccepted', 'OrderRejected'] THEN
    INSERT INTO orders (order_id, symbol, user_id, client_order_id, side, type, time_in_force,
                        price, stop_price, quantity, remaining, status, reason,
                        created_at, updated_at)
    SELECT s.order_id, e.stream, s.user_id, s.client_order_id, s.side, s.type, s.time_in_force,
           CASE WHEN s.type IN ('limit', 'stop_limit') THEN s.price * i.tick_size END,
           NULLIF(s.stop_price, 0) * i.tick_size,
           s.quantity * i.lot_size,
           CASE WHEN e.type = 'OrderAccepted' THEN s.quantity * i.lot_size ELSE 0 END,
           CASE WHEN e.type = 'OrderAccepted' THEN a.status ELSE 'rejected' END,
           a.reason, journal_time(e.ts), journal_time(e.ts)
    FROM journal_range(first_id, last_id) AS e
    CROSS JOIN LATERAL json_to_record(e.p) AS a(spec json, status text, reason text)
    CROSS JOIN LATERAL json_to_record(a.spec) AS s(
        order_id bigint, user_id text, client_order_id text, side text, type text,
        time_in_force text, price numeric, stop_price numeric, quantity numeric)
    JOIN instruments i ON i.symbol = e.stream
    WHERE e.type IN ('OrderAccepted', 'OrderRejected')
    ON CONFLICT (order_id) DO NOTHING;
    END IF;

    IF types && ARRAY['OrderFilled', 'OrderCancelled', 'OrderExpired', 'OrderReduced',
                      'OrderAmended', 'StopTriggered'] THEN
    WITH changes AS (
        SELECT e.id, x.order_id, e.ts, i.tick_size, i.lot_size,
               CASE e.type WHEN 'OrderFilled' THEN x.status
                           WHEN 'OrderCancelled' THEN 'cancelled'
                           WHEN 'OrderExpired' THEN 'expired'
                           WHEN 'StopTriggered' THEN 'open' END AS status,
               x.filled,  -- in OrderFilled, OrderCancelled and OrderExpired
               CASE WHEN e.type IN ('OrderCancelled', 'OrderExpired') THEN 0
                    ELSE x.remaining END AS remaining,
               CASE WHEN e.type = 'OrderAmended' THEN x.price END AS price,
               CASE WHEN e.type = 'OrderAmended' THEN x.quantity END AS quantity,
               CASE WHEN e.type = 'OrderFilled' THEN x.price * x.quantity END AS value,
               CASE WHEN e.type = 'OrderCancelled' THEN x.reason END AS reason
        FROM journal_range(first_id, last_id) AS e
        CROSS JOIN LATERAL json_to_record(e.p) AS x(
            order_id bigint, status text, filled numeric, remaining numeric, price numeric,
            quantity numeric, reason text)
        JOIN instruments i ON i.symbol = e.stream
        WHERE e.type IN ('OrderFilled', 'OrderCancelled', 'OrderExpired', 'OrderReduced',
                         'OrderAmended', 'StopTriggered')
    ), last AS (
        SELECT order_id, max(ts) AS ts, min(tick_size) AS tick_size, min(lot_size) AS lot_size,
               (array_agg(status ORDER BY id DESC) FILTER (WHERE status IS NOT NULL))[1] AS status,
               (array_agg(filled ORDER BY id DESC) FILTER (WHERE filled IS NOT NULL))[1] AS filled,
               (array_agg(remaining ORDER BY id DESC)
                   FILTER (WHERE remaining IS NOT NULL))[1] AS remaining,
               (array_agg(price ORDER BY id DESC) FILTER (WHERE price IS NOT NULL))[1] AS price,
               (array_agg(quantity ORDER BY id DESC)
                   FILTER (WHERE quantity IS NOT NULL))[1] AS quantity,
               sum(value) AS value,
               (array_agg(reason ORDER BY id DESC) FILTER (WHERE reason IS NOT NULL))[1] AS reason
        FROM changes GROUP BY order_id
    )
    UPDATE orders o SET
        status = coalesce(last.status, o.status),
        filled = coalesce(last.filled * last.lot_size, o.filled),
        remaining = coalesce(last.remaining * last.lot_size, o.remaining),
        price = coalesce(last.price * last.tick_size, o.price),
        quantity = coalesce(last.quantity * last.lot_size, o.quantity),
        filled_value = o.filled_value
                       + coalesce(last.value * last.tick_size * last.lot_size, 0),
        reason = coalesce(last.reason, o.reason),
        updated_at = journal_time(last.ts)
    FROM last WHERE o.order_id = last.order_id;
    END IF;

    -- Trades, pending until their posting (or, on a margin symbol, their margin
    -- settlement) is journaled.
    IF types && ARRAY['Trade'] THEN
    INSERT INTO trades (symbol, trade_id, price, quantity, aggressor, maker_order_id,
                        taker_order_id, maker_user_id, taker_user_id, maker_fee, taker_fee,
                        executed_at)
    SELECT e.stream, t.trade_id, t.price * i.tick_size, t.quantity * i.lot_size, t.aggressor,
           t.maker_order_id, t.taker_order_id, t.maker_user_id, t.taker_user_id,
           t.maker_fee, t.taker_fee, journal_time(e.ts)
    FROM journal_range(first_id, last_id) AS e
    CROSS JOIN LATERAL json_to_record(e.p) AS t(
        trade_id bigint, price numeric, quantity numeric, aggressor text, maker_order_id bigint,
        taker_order_id bigint, maker_user_id text, taker_user_id text, maker_fee bigint,
        taker_fee bigint)
    JOIN instruments i ON i.symbol = e.stream
    WHERE e.type = 'Trade'
    ON CONFLICT (symbol, trade_id) DO NOTHING;
    END IF;

    IF NOT types && ARRAY['Posted', 'MarginSettled'] THEN
        RETURN;
    END IF;
    UPDATE trades t SET settlement_status = 'settled', settled_at = journal_time(s.ts)
    FROM (
        SELECT split_part(p->>'posting_id', ':', 2) AS symbol,
               split_part(p->>'posting_id', ':', 3)::bigint AS trade_id, ts
        FROM journal_range(first_id, last_id) WHERE type = 'Posted' AND p->>'kind' = 'trade'
        UNION ALL
        SELECT p->>'symbol', (p->>'trade_id')::bigint, ts
        FROM journal_range(first_id, last_id) WHERE type = 'MarginSettled'
    ) AS s
    WHERE t.symbol = s.symbol AND t.trade_id = s.trade_id AND t.settlement_status <> 'settled';

    -- The ledger, and the balances that are its sums.
    WITH entries AS (
        INSERT INTO ledger_entries (posting_id, kind, account, asset, amount, posted_at)
        SELECT p->>'posting_id', p->>'kind', entry->>0, entry->>1, (entry->>2)::numeric,
               journal_time(ts)
        FROM journal_range(first_id, last_id), json_array_elements(p->'entries') AS entry
        WHERE type = 'Posted'
        ON CONFLICT DO NOTHING
        RETURNING account, asset, amount
    )
    INSERT INTO balances (account, asset, amount)
    SELECT account, asset, sum(amount) FROM entries GROUP BY account, asset
    ON CONFLICT (account, asset) DO UPDATE SET amount = balances.amount + excluded.amount;
END
$$;

-- How far the read tables have got: every journal row with id <= last_id is in them.
CREATE TABLE projection (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_id bigint  NOT NULL
);
INSERT INTO projection (last_id) VALUES (0);

-- Project what was committed since the last call; returns the new last_id.
-- One writer holds an advisory lock from taking ids to committing them, so a
-- row this sees committed has a lower id than any row still in flight.
CREATE FUNCTION project_pending() RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    done bigint;
    upto bigint;
BEGIN
    SELECT last_id INTO done FROM projection FOR UPDATE;
    SELECT coalesce(max(id), 0) INTO upto FROM journal;
    IF upto > done THEN
        PERFORM project_journal(done + 1, upto);
        UPDATE projection SET last_id = upto;
    END IF;
    RETURN greatest(upto, done);
END
$$;

-- A journal written before this migration: project all of it now.
SELECT project_pending();
