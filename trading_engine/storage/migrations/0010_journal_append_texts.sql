-- journal_append taking each write's types and payloads as one text apiece, and
-- its hashes as one bytea, instead of as arrays.
--
-- The driver encodes an array element by element, checking each in Python
-- first: for a write of 184 events that took 0.44 ms of the journal thread
-- beyond a bare call's own cost, holding the engine's interpreter lock all
-- the while, against 0.09 ms for the same events joined (asyncpg 0.32).
-- The texts are split here instead, in C.
--
-- types      the events' type names, joined by '\n' (a newline between two,
-- payloads   none after the last), and their payload texts, joined the same
--            way: canonical JSON (codec.dumps) never holds a raw newline; it
--            writes one inside a string as the escape "\n".
-- hashes     the events' 32-byte links, one after another.
--
-- A text that does not split into as many events as the counts add up to is
-- refused, with nothing written, as an array of the wrong length was.

DROP FUNCTION journal_append(bigint, text[], bigint[], integer[], text[], json[], bigint[], bytea[]);

CREATE FUNCTION journal_append(
    lock_key bigint, streams text[], first_seqs bigint[], counts integer[],
    types text, payloads text, ts bigint[], hashes bytea
) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    tip bigint;
    done integer := 0;
    n integer;
    type_list text[] := string_to_array(types, E'\n');
    payload_list json[] := string_to_array(payloads, E'\n')::json[];
    hash_list bytea[] := ARRAY(
        SELECT substring(hashes FROM i * 32 + 1 FOR 32)
        FROM generate_series(0, length(hashes) / 32 - 1) AS i ORDER BY i
    );
    total integer := coalesce(cardinality(type_list), 0);
BEGIN
    IF length(hashes) % 32 <> 0
       OR coalesce(cardinality(payload_list), 0) <> total
       OR coalesce(cardinality(hash_list), 0) <> total
       OR coalesce(cardinality(ts), 0) <> total THEN
        RAISE EXCEPTION 'journal_append: % types, % payloads, % timestamps and % bytes of hashes',
            total, coalesce(cardinality(payload_list), 0), coalesce(cardinality(ts), 0),
            length(hashes);
    END IF;
    PERFORM pg_advisory_xact_lock(lock_key);
    FOR i IN 1 .. coalesce(cardinality(streams), 0) LOOP
        n := counts[i];
        SELECT last_seq INTO tip FROM journal_batches
        WHERE stream = streams[i] ORDER BY last_seq DESC LIMIT 1;
        IF coalesce(tip, 0) <> first_seqs[i] - 1 THEN
            RAISE unique_violation USING MESSAGE = format(
                'journal: %s: seq %s does not follow %s', streams[i], first_seqs[i], coalesce(tip, 0)
            );
        END IF;
        INSERT INTO journal_batches (stream, first_seq, last_seq, types, payloads, ts, hashes)
        VALUES (streams[i], first_seqs[i], first_seqs[i] + n - 1, type_list[done + 1 : done + n],
                payload_list[done + 1 : done + n], ts[done + 1 : done + n],
                hash_list[done + 1 : done + n]);
        done := done + n;
    END LOOP;
    IF done <> total THEN
        RAISE EXCEPTION 'journal_append: % events given, the counts add up to %', total, done;
    END IF;
END
$$;
