-- Fees in the read tables as `numeric`, like every other amount there.
--
-- The engine computes in Python ints, which have no bound: a fee is the
-- notional (price ticks x quantity lots x the quote minor units of one tick
-- of one lot) times the rate. 0002 made `trades.maker_fee` and `taker_fee`
-- `bigint`, so a 10 bps fee on a trade of 10,000,000 at 10,000,000 (tick 1,
-- lot 1, a quote asset of 8 decimals) is 10^19 minor units, past 2^63 - 1:
-- the projection of its commit failed, and with it every later one, on every
-- retry. Prices, quantities, `orders.filled_value`, ledger amounts and
-- balances were `numeric` from the start.
--
-- What stays `bigint` is bounded by construction: order and trade ids
-- (counters the engine moves on by one per order and per trade of a symbol),
-- journal ids and positions, seqs, times (nanoseconds since the epoch, good
-- until 2262), snapshot sizes and counts; `ledger_entries.entry` (smallint)
-- is an entry's place in its posting, which holds at most six.
--
-- The column change rewrites `trades` and its indexes in this migration's
-- transaction (about 9 s for a million trades here). The projection is
-- 0013's, reading the fees as numeric (a bigint there refused the value
-- before it reached the table). That costs nothing measurable: rebuilding
-- the read tables from the engine benchmark's journal (365,220 events, 40,100
-- trades, in 100 ranges) took 11.1-14.4 s with it and 12.2-16.8 s with 0013's
-- (runs alternated on a loaded machine), and reading and grouping the trades'
-- fees alone 416-490 ms as numeric against 374-463 ms as bigint (medians).

ALTER TABLE trades ALTER COLUMN maker_fee TYPE numeric,
                   ALTER COLUMN taker_fee TYPE numeric;

-- 0013's projection, the fees read as numeric.
CREATE OR REPLACE FUNCTION project_journal(first_id bigint, last_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT  -- a restore (pg_dump) runs with an empty search_path
-- Planned once: planning each statement anew for every commit cost more than running it.
SET plan_cache_mode = force_generic_plan
-- The generic plan guesses a few rows for every CTE, and once hash-joined the
-- whole orders table to a range's orders: each join here is a lookup by key.
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
BEGIN
    WITH r AS MATERIALIZED (
        SELECT id, stream, type, p FROM journal_range(first_id, last_id)
    ),

    -- Symbols and users.
    listed AS (
        SELECT x.symbol, x.base_asset, x.quote_asset, x.tick_size, x.lot_size, x.mode,
               (r.p->'instrument')::jsonb AS definition, (r.p->>'ts')::bigint AS ts
        FROM r CROSS JOIN LATERAL json_to_record(r.p->'instrument') AS x(
            symbol text, base_asset text, quote_asset text, tick_size numeric,
            lot_size numeric, mode text)
        WHERE r.type = 'InstrumentListed'
    ),
    halts AS (
        SELECT DISTINCT ON (p->>'symbol') p->>'symbol' AS symbol,
               CASE WHEN type = 'SymbolHalted' THEN p->>'reason' END AS halted
        FROM r WHERE type IN ('SymbolHalted', 'SymbolResumed')
        ORDER BY p->>'symbol', id DESC
    ),
    new_instruments AS (
        INSERT INTO instruments (symbol, base_asset, quote_asset, tick_size, lot_size, mode,
                                 definition, halted, listed_at)
        SELECT l.symbol, l.base_asset, l.quote_asset, l.tick_size, l.lot_size, l.mode,
               l.definition, h.halted, journal_time(l.ts)
        FROM listed l LEFT JOIN halts h ON h.symbol = l.symbol
        ON CONFLICT (symbol) DO NOTHING
    ),
    halted_instruments AS (
        UPDATE instruments i SET halted = h.halted FROM halts h WHERE i.symbol = h.symbol
    ),
    new_users AS (
        INSERT INTO users (user_id, owner, api_key_hash, created_at)
        SELECT p->>'user_id', p->>'owner', p->>'api_key_hash', journal_time((p->>'ts')::bigint)
        FROM r WHERE type = 'UserCreated'
        ON CONFLICT (user_id) DO NOTHING
    ),

    -- Orders: each order's events in the range, grouped, give its last word: the
    -- acceptance (or rejection) of an order the range adds comes first, with the
    -- order as placed. A spec journaled before it had reduce_only (or post_only)
    -- is an ordinary order.
    order_events AS (
        SELECT e.id, s.order_id, a.ts, e.stream, s.user_id, s.client_order_id, s.side,
               s.type, s.time_in_force, NULLIF(s.stop_price, 0) AS stop_price,
               coalesce(s.reduce_only, false) AS reduce_only,
               coalesce(s.post_only, false) AS post_only, true AS placed,
               CASE WHEN e.type = 'OrderAccepted' THEN a.status ELSE 'rejected' END AS status,
               NULL::numeric AS filled,
               CASE WHEN e.type = 'OrderAccepted' THEN s.quantity ELSE 0 END AS remaining,
               CASE WHEN s.type IN ('limit', 'stop_limit') THEN s.price END AS price,
               s.quantity, NULL::numeric AS value, a.reason
        FROM r AS e
        CROSS JOIN LATERAL json_to_record(e.p) AS a(
            spec json, status text, reason text, ts bigint)
        CROSS JOIN LATERAL json_to_record(a.spec) AS s(
            order_id bigint, user_id text, client_order_id text, side text, type text,
            time_in_force text, price numeric, stop_price numeric, quantity numeric,
            reduce_only boolean, post_only boolean)
        WHERE e.type IN ('OrderAccepted', 'OrderRejected')
        UNION ALL
        SELECT e.id, x.order_id, x.ts, e.stream, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
               false,
               CASE e.type WHEN 'OrderFilled' THEN x.status
                           WHEN 'OrderCancelled' THEN 'cancelled'
                           WHEN 'OrderExpired' THEN 'expired'
                           WHEN 'StopTriggered' THEN 'open' END,
               x.filled,  -- in OrderFilled, OrderCancelled and OrderExpired
               CASE WHEN e.type IN ('OrderCancelled', 'OrderExpired') THEN 0
                    ELSE x.remaining END,
               CASE WHEN e.type = 'OrderAmended' THEN x.price END,
               CASE WHEN e.type = 'OrderAmended' THEN x.quantity END,
               CASE WHEN e.type = 'OrderFilled' THEN x.price * x.quantity END,
               CASE WHEN e.type = 'OrderCancelled' THEN x.reason END
        FROM r AS e
        CROSS JOIN LATERAL json_to_record(e.p) AS x(
            order_id bigint, status text, filled numeric, remaining numeric, price numeric,
            quantity numeric, reason text, ts bigint)
        WHERE e.type IN ('OrderFilled', 'OrderCancelled', 'OrderExpired', 'OrderReduced',
                         'OrderAmended', 'StopTriggered')
    ),
    order_groups AS (
        SELECT o.order_id, bool_or(o.placed) AS placed, min(o.stream) AS symbol,
               min(o.ts) AS created, max(o.ts) AS ts,
               min(o.user_id) AS user_id, min(o.client_order_id) AS client_order_id,
               min(o.side) AS side, min(o.type) AS type, min(o.time_in_force) AS time_in_force,
               min(o.stop_price) AS stop_price, bool_or(o.reduce_only) AS reduce_only,
               bool_or(o.post_only) AS post_only,
               (array_agg(o.status ORDER BY o.id DESC)
                   FILTER (WHERE o.status IS NOT NULL))[1] AS status,
               (array_agg(o.filled ORDER BY o.id DESC)
                   FILTER (WHERE o.filled IS NOT NULL))[1] AS filled,
               (array_agg(o.remaining ORDER BY o.id DESC)
                   FILTER (WHERE o.remaining IS NOT NULL))[1] AS remaining,
               (array_agg(o.price ORDER BY o.id DESC)
                   FILTER (WHERE o.price IS NOT NULL))[1] AS price,
               (array_agg(o.quantity ORDER BY o.id DESC)
                   FILTER (WHERE o.quantity IS NOT NULL))[1] AS quantity,
               sum(o.value) AS value,
               (array_agg(o.reason ORDER BY o.id DESC)
                   FILTER (WHERE o.reason IS NOT NULL))[1] AS reason
        FROM order_events o GROUP BY o.order_id
    ),
    -- Each with its symbol's sizes: as listed before the range, or in it.
    last AS (
        SELECT g.*, z.tick_size, z.lot_size FROM order_groups g CROSS JOIN LATERAL (
            SELECT tick_size, lot_size FROM instruments WHERE symbol = g.symbol
            UNION ALL  -- a symbol listed in the range: not in the table yet
            SELECT tick_size, lot_size FROM listed WHERE symbol = g.symbol
            LIMIT 1
        ) AS z
    ),
    new_orders AS (
        INSERT INTO orders (order_id, symbol, user_id, client_order_id, side, type,
                            time_in_force, price, stop_price, quantity, filled, remaining,
                            filled_value, status, reason, reduce_only, post_only,
                            created_at, updated_at)
        SELECT l.order_id, l.symbol, l.user_id, l.client_order_id, l.side, l.type,
               l.time_in_force, l.price * l.tick_size, l.stop_price * l.tick_size,
               l.quantity * l.lot_size, coalesce(l.filled * l.lot_size, 0),
               l.remaining * l.lot_size, coalesce(l.value * l.tick_size * l.lot_size, 0),
               l.status, l.reason, l.reduce_only, l.post_only,
               journal_time(l.created), journal_time(l.ts)
        FROM last l WHERE l.placed
        ON CONFLICT (order_id) DO NOTHING
    ),
    changed_orders AS (
        UPDATE orders o SET
            status = coalesce(l.status, o.status),
            filled = coalesce(l.filled * l.lot_size, o.filled),
            remaining = coalesce(l.remaining * l.lot_size, o.remaining),
            price = coalesce(l.price * l.tick_size, o.price),
            quantity = coalesce(l.quantity * l.lot_size, o.quantity),
            filled_value = o.filled_value + coalesce(l.value * l.tick_size * l.lot_size, 0),
            reason = coalesce(l.reason, o.reason),
            updated_at = journal_time(l.ts)
        FROM last l
        WHERE o.order_id = l.order_id AND NOT l.placed
    ),

    -- Trades, pending until their posting (or, on a margin symbol, their margin
    -- settlement) is journaled; the first of these settles a trade. As with
    -- orders, a trade's events in the range are grouped: its execution, if the
    -- range holds it, and its settlements.
    postings AS (
        SELECT x.posting_id, x.kind, x.entries, x.ts
        FROM r CROSS JOIN LATERAL json_to_record(r.p) AS x(
            posting_id text, kind text, entries json, ts bigint)
        WHERE r.type = 'Posted'
    ),
    trade_events AS (
        SELECT e.stream AS symbol, t.trade_id, t.ts AS executed, NULL::bigint AS settled,
               t.price, t.quantity, t.aggressor, t.maker_order_id, t.taker_order_id,
               t.maker_user_id, t.taker_user_id, t.maker_fee, t.taker_fee
        FROM r AS e
        CROSS JOIN LATERAL json_to_record(e.p) AS t(
            trade_id bigint, price numeric, quantity numeric, aggressor text,
            maker_order_id bigint, taker_order_id bigint, maker_user_id text,
            taker_user_id text, maker_fee numeric, taker_fee numeric, ts bigint)
        WHERE e.type = 'Trade'
        UNION ALL
        SELECT split_part(posting_id, ':', 2), split_part(posting_id, ':', 3)::bigint, NULL, ts,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
        FROM postings WHERE kind = 'trade'
        UNION ALL
        SELECT p->>'symbol', (p->>'trade_id')::bigint, NULL, (p->>'ts')::bigint,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
        FROM r WHERE type = 'MarginSettled'
    ),
    trade_groups AS (
        SELECT symbol, trade_id, min(executed) AS executed, min(settled) AS settled,
               min(price) AS price, min(quantity) AS quantity, min(aggressor) AS aggressor,
               min(maker_order_id) AS maker_order_id, min(taker_order_id) AS taker_order_id,
               min(maker_user_id) AS maker_user_id, min(taker_user_id) AS taker_user_id,
               min(maker_fee) AS maker_fee, min(taker_fee) AS taker_fee
        FROM trade_events GROUP BY symbol, trade_id
    ),
    trade_last AS (
        SELECT g.*, z.tick_size, z.lot_size FROM trade_groups g LEFT JOIN LATERAL (
            SELECT tick_size, lot_size FROM instruments WHERE symbol = g.symbol
            UNION ALL
            SELECT tick_size, lot_size FROM listed WHERE symbol = g.symbol
            LIMIT 1
        ) AS z ON true  -- a settlement alone needs no sizes
    ),
    new_trades AS (
        INSERT INTO trades (symbol, trade_id, price, quantity, aggressor, maker_order_id,
                            taker_order_id, maker_user_id, taker_user_id, maker_fee,
                            taker_fee, executed_at, settlement_status, settled_at)
        SELECT t.symbol, t.trade_id, t.price * t.tick_size, t.quantity * t.lot_size,
               t.aggressor, t.maker_order_id, t.taker_order_id, t.maker_user_id,
               t.taker_user_id, t.maker_fee, t.taker_fee, journal_time(t.executed),
               CASE WHEN t.settled IS NULL THEN 'pending' ELSE 'settled' END,
               journal_time(t.settled)
        FROM trade_last t
        WHERE t.executed IS NOT NULL
        ON CONFLICT (symbol, trade_id) DO NOTHING
    ),
    settled_trades AS (
        UPDATE trades t SET settlement_status = 'settled', settled_at = journal_time(s.settled)
        FROM trade_last s
        WHERE s.executed IS NULL AND t.symbol = s.symbol AND t.trade_id = s.trade_id
          AND t.settlement_status <> 'settled'
    ),

    -- The ledger, each entry once (a range projected again adds nothing), and
    -- the balances that are its sums.
    entries AS (
        INSERT INTO ledger_entries (posting_id, entry, kind, account, asset, amount, posted_at)
        SELECT x.posting_id, e.n, x.kind, e.item->>0, e.item->>1, (e.item->>2)::numeric,
               journal_time(x.ts)
        FROM postings x
        CROSS JOIN LATERAL json_array_elements(x.entries) WITH ORDINALITY AS e(item, n)
        ON CONFLICT DO NOTHING
        RETURNING account, asset, amount
    )
    INSERT INTO balances (account, asset, amount)
    SELECT account, asset, sum(amount) FROM entries GROUP BY account, asset
    ON CONFLICT (account, asset) DO UPDATE SET amount = balances.amount + excluded.amount;
END
$$;
