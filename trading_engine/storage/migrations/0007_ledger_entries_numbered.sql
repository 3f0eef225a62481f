-- Ledger entries keyed by their place in the posting, and the projection
-- restated whole.
--
-- A posting may hold two entries for the same account and asset: in a
-- self-trade (stp none) one user is both buyer and seller, so the posting
-- credits and debits that user's base and quote. ledger_entries was keyed by
-- (posting_id, account, asset) and its insert skipped conflicts, so the second
-- of such a pair was dropped and that user's balances drifted from the ledger
-- (`trading-engine audit` reports it as "read tables: balances differ"). Now
-- an entry is keyed by (posting_id, entry), its 1-based place in the posting's
-- entries as journaled; this migration refills the table from the journal
-- and recomputes the balances.
--
-- The projection is restated here as one function, replacing 0002's body
-- (renamed project_journal_0002 by 0004), 0006's project_order_flags and the
-- project_journal that ran the two. Besides numbering the entries it reads
-- each Posted payload once (json_to_record) instead of once per field, and
-- takes an order's reduce_only and post_only flags in the insert that creates
-- the order, instead of a second pass over the range's orders.

ALTER TABLE ledger_entries ADD COLUMN entry smallint;
ALTER TABLE ledger_entries DROP CONSTRAINT ledger_entries_pkey;
TRUNCATE ledger_entries;
ALTER TABLE ledger_entries ALTER COLUMN entry SET NOT NULL;
ALTER TABLE ledger_entries ADD PRIMARY KEY (posting_id, entry);

DROP FUNCTION project_journal(bigint, bigint);
DROP FUNCTION project_journal_0002(bigint, bigint);
DROP FUNCTION project_order_flags(bigint, bigint);

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

    -- Orders: new ones first, then the last word of this batch on each. A spec
    -- journaled before it had reduce_only (or post_only) is an ordinary order.
    IF types && ARRAY['OrderAccepted', 'OrderRejected'] THEN
    INSERT INTO orders (order_id, symbol, user_id, client_order_id, side, type, time_in_force,
                        price, stop_price, quantity, remaining, status, reason,
                        reduce_only, post_only, created_at, updated_at)
    SELECT s.order_id, e.stream, s.user_id, s.client_order_id, s.side, s.type, s.time_in_force,
           CASE WHEN s.type IN ('limit', 'stop_limit') THEN s.price * i.tick_size END,
           NULLIF(s.stop_price, 0) * i.tick_size,
           s.quantity * i.lot_size,
           CASE WHEN e.type = 'OrderAccepted' THEN s.quantity * i.lot_size ELSE 0 END,
           CASE WHEN e.type = 'OrderAccepted' THEN a.status ELSE 'rejected' END,
           a.reason, coalesce(s.reduce_only, false), coalesce(s.post_only, false),
           journal_time(e.ts), journal_time(e.ts)
    FROM journal_range(first_id, last_id) AS e
    CROSS JOIN LATERAL json_to_record(e.p) AS a(spec json, status text, reason text)
    CROSS JOIN LATERAL json_to_record(a.spec) AS s(
        order_id bigint, user_id text, client_order_id text, side text, type text,
        time_in_force text, price numeric, stop_price numeric, quantity numeric,
        reduce_only boolean, post_only boolean)
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
    PERFORM project_ledger(first_id, last_id);
END
$$;

-- The postings of a range into ledger_entries, each entry once (a range
-- projected again adds nothing), and their sums into balances.
CREATE FUNCTION project_ledger(first_id bigint, last_id bigint) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    WITH entries AS (
        INSERT INTO ledger_entries (posting_id, entry, kind, account, asset, amount, posted_at)
        SELECT x.posting_id, n, x.kind, item->>0, item->>1, (item->>2)::numeric, journal_time(ts)
        FROM journal_range(first_id, last_id)
        CROSS JOIN LATERAL json_to_record(p) AS x(posting_id text, kind text, entries jsonb)
        CROSS JOIN LATERAL jsonb_array_elements(x.entries) WITH ORDINALITY AS e(item, n)
        WHERE type = 'Posted'
        ON CONFLICT DO NOTHING
        RETURNING account, asset, amount
    )
    INSERT INTO balances (account, asset, amount)
    SELECT account, asset, sum(amount) FROM entries GROUP BY account, asset
    ON CONFLICT (account, asset) DO UPDATE SET amount = balances.amount + excluded.amount;
END
$$;

-- The entries projected before this migration, numbered, and balances that sum them.
TRUNCATE balances;
SELECT project_ledger(1, last_id) FROM projection;
