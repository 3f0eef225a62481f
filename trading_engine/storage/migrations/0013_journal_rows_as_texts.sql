-- journal_batches keeps a row's type names and payload texts as one text
-- apiece, joined by newlines, and its hashes as one bytea, the form that
-- journal_append is given them in (0010), instead of as arrays; and it no
-- longer keeps the events' times apart from their payloads, which hold them.
--
-- Most of journal_append's time went on turning the texts back into arrays:
-- splitting them, checking every payload as JSON (what the json type's input
-- does), slicing the arrays per row and building the hashes' array; sending
-- and storing the times as an array of bigints took most of a millisecond
-- more. For a write of 1,628 events, 350 kB of payloads, about what one write
-- of the engine benchmark holds, the call took 8.6 ms; with the texts stored
-- as they come 4.2 ms, and without the times 3.0 ms (a throwaway timer on the
-- saved benchmark journal, the median of 57 to 77 calls each, commit
-- included). The engine waits on that call.
--
-- The payloads are now checked as JSON where they are read as JSON: in the
-- `journal` view, and in the projection, away from the engine's path. The
-- view takes each event's ts from its payload; the projection takes it from
-- the fields it reads from each payload anyway (taking it in the view for
-- every event made projecting the benchmark's journal 11% slower).
--
-- types     the row's events' type names, joined by '\n';
-- payloads  their payload texts (codec.dumps), joined by '\n': canonical JSON
--           never holds a raw newline, it writes one in a string as "\n";
-- hashes    their 32-byte links, one after another.
-- The table checks the number of types and the length of the hashes. It does
-- not split the payloads to count them, which would cost the write a good part
-- of what it saves; the readers split them, refuse a row whose counts differ,
-- and `trading-engine audit` would find its chain broken.

DROP VIEW journal;

-- The rows already written are converted in place; a part that holds a newline
-- (none can, written by the engine) stops the migration. The two helpers are
-- dropped once it is done (not temporary ones: a role may lack TEMP).
CREATE FUNCTION journal_migration_joined(parts text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF array_position(parts, NULL) IS NOT NULL
       OR EXISTS (SELECT FROM unnest(parts) AS p WHERE strpos(p, E'\n') > 0) THEN
        RAISE EXCEPTION 'journal_batches: a type or payload holds a newline or is null';
    END IF;
    RETURN array_to_string(parts, E'\n');
END
$$;

CREATE FUNCTION journal_migration_concatenated(parts bytea[]) RETURNS bytea
LANGUAGE sql IMMUTABLE
AS $$ SELECT string_agg(p, ''::bytea ORDER BY n) FROM unnest(parts) WITH ORDINALITY AS u (p, n) $$;

ALTER TABLE journal_batches
    DROP CONSTRAINT journal_batches_check1,  -- cardinality(types)
    DROP CONSTRAINT journal_batches_check2,  -- cardinality(payloads)
    DROP CONSTRAINT journal_batches_check3,  -- cardinality(ts)
    DROP CONSTRAINT journal_batches_check4,  -- cardinality(hashes)
    ALTER types TYPE text USING journal_migration_joined(types),
    ALTER payloads TYPE text USING journal_migration_joined(payloads::text[]),
    ALTER hashes TYPE bytea USING journal_migration_concatenated(hashes),
    DROP COLUMN ts,
    ADD CONSTRAINT journal_batches_types_count
        CHECK (cardinality(string_to_array(types, E'\n')) = last_seq - first_seq + 1),
    ADD CONSTRAINT journal_batches_hashes_length
        CHECK (octet_length(hashes) = 32 * (last_seq - first_seq + 1));
DROP FUNCTION journal_migration_joined(text[]), journal_migration_concatenated(bytea[]);

-- A change of type resets how a column is stored: as 0009, not compressed.
ALTER TABLE journal_batches ALTER payloads SET STORAGE EXTERNAL,
                            ALTER hashes SET STORAGE EXTERNAL;

-- One row per event, with the columns and types of 0009's view.
CREATE VIEW journal AS
SELECT journal_position(b.id, e.n) AS id, b.stream, b.first_seq + e.n - 1 AS seq,
       e.type, e.payload::json AS payload, (e.payload::json ->> 'ts')::bigint AS ts,
       substring(b.hashes FROM e.n::integer * 32 - 31 FOR 32) AS hash, b.id AS batch
FROM journal_batches b,
     unnest(string_to_array(b.types, E'\n'), string_to_array(b.payloads, E'\n'))
         WITH ORDINALITY AS e (type, payload, n);

CREATE OR REPLACE FUNCTION journal_at(at_stream text, at_seq bigint)
RETURNS TABLE (id bigint, hash bytea)
LANGUAGE sql STABLE
AS $$
SELECT journal_position(b.id, at_seq - b.first_seq + 1),
       substring(b.hashes FROM (at_seq - b.first_seq)::integer * 32 + 1 FOR 32)
FROM (
    SELECT id, first_seq, hashes FROM journal_batches
    WHERE stream = at_stream AND last_seq >= at_seq ORDER BY last_seq LIMIT 1
) AS b
WHERE b.first_seq <= at_seq
$$;

-- Append one write: a row per element of streams, with counts[i] events each,
-- whose type names, payload texts and hashes are types[i], payloads[i] and
-- hashes[i] as above. Under the advisory lock lock_key (the writers' own), so
-- that ids follow commit order; raises unique_violation, and writes nothing,
-- if a row does not follow on from its stream's last seq.
DROP FUNCTION journal_append(bigint, text[], bigint[], integer[], text, text, bigint[], bytea);

CREATE FUNCTION journal_append(
    lock_key bigint, streams text[], first_seqs bigint[], counts integer[],
    types text[], payloads text[], hashes bytea[]
) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    rows integer := coalesce(cardinality(streams), 0);
    tip bigint;
BEGIN
    IF coalesce(cardinality(first_seqs), 0) <> rows OR coalesce(cardinality(counts), 0) <> rows
       OR coalesce(cardinality(types), 0) <> rows OR coalesce(cardinality(payloads), 0) <> rows
       OR coalesce(cardinality(hashes), 0) <> rows THEN
        RAISE EXCEPTION 'journal_append: % streams, % first seqs, % counts, % types, % payloads'
            ' and % hashes', rows, coalesce(cardinality(first_seqs), 0),
            coalesce(cardinality(counts), 0), coalesce(cardinality(types), 0),
            coalesce(cardinality(payloads), 0), coalesce(cardinality(hashes), 0);
    END IF;
    PERFORM pg_advisory_xact_lock(lock_key);
    FOR i IN 1 .. rows LOOP
        SELECT last_seq INTO tip FROM journal_batches
        WHERE stream = streams[i] ORDER BY last_seq DESC LIMIT 1;
        IF coalesce(tip, 0) <> first_seqs[i] - 1 THEN
            RAISE unique_violation USING MESSAGE = format(
                'journal: %s: seq %s does not follow %s', streams[i], first_seqs[i], coalesce(tip, 0)
            );
        END IF;
        INSERT INTO journal_batches (stream, first_seq, last_seq, types, payloads, hashes)
        VALUES (streams[i], first_seqs[i], first_seqs[i] + counts[i] - 1, types[i], payloads[i],
                hashes[i]);
    END LOOP;
END
$$;

-- 0011's projection, each event's ts taken with the fields it reads from the
-- event's payload (or, for the few events read field by field, read alone).
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
            taker_user_id text, maker_fee bigint, taker_fee bigint, ts bigint)
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
