-- The journal stored as one row per stream and write, instead of one per event.
--
-- A write of the engine holds hundreds of events of a few streams; PostgreSQL's
-- work per row (the tuple, two index entries, the WAL record) was what limited
-- the durable benchmark. Now a write is one statement, `journal_append`, that
-- inserts a row per stream it touches, the events side by side in arrays.
--
-- id         global commit order of the rows, as before (one writer at a time
--            under an advisory lock, so ids grow in commit order).
-- stream     a symbol, '$accounts' or '$symbols'.
-- first_seq  the seq of the row's first event; its events are first_seq,
-- last_seq   first_seq + 1, ..., last_seq, with no gap, and a stream's rows
--            follow on one from another (journal_append checks it).
-- types      each event's type, payloads its fields (as codec.dumps writes
-- payloads   them), ts when it happened (nanoseconds since the epoch) and
-- ts         hashes its link in the stream's chain, exactly as 0001 describes:
-- hashes     sha256(previous hash || type || payload text).
--
-- `journal` is now a view with one row per event and the columns it had
-- (the event's position as `id`, see journal_position), so the projection,
-- the audit and any query written against the old table read it as before.
-- The rows already written move over one event per row, with the same order.

CREATE TABLE journal_batches (
    id        bigserial PRIMARY KEY,
    stream    text     NOT NULL,
    first_seq bigint   NOT NULL CHECK (first_seq > 0),
    last_seq  bigint   NOT NULL,
    types     text[]   NOT NULL,
    payloads  json[]   NOT NULL,
    ts        bigint[] NOT NULL,
    hashes    bytea[]  NOT NULL,
    CONSTRAINT journal_batches_stream_seq_key UNIQUE (stream, last_seq),
    -- At most 2^24 events a row: journal_position keeps the event's place in 24 bits.
    CHECK (last_seq >= first_seq AND last_seq - first_seq < 16777216),
    CHECK (cardinality(types) = last_seq - first_seq + 1),
    CHECK (cardinality(payloads) = last_seq - first_seq + 1),
    CHECK (cardinality(ts) = last_seq - first_seq + 1),
    CHECK (cardinality(hashes) = last_seq - first_seq + 1)
);
-- Stored as they are: compressing the payloads costs more than it saves here,
-- and hashes do not compress.
ALTER TABLE journal_batches ALTER payloads SET STORAGE EXTERNAL,
                            ALTER hashes SET STORAGE EXTERNAL;

-- An event's position in the journal: its row's id and its 1-based place in the
-- row, in one bigint that grows in commit order (what `id` was in the old table).
CREATE FUNCTION journal_position(batch bigint, n bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT batch * 16777216 + n $$;

INSERT INTO journal_batches (id, stream, first_seq, last_seq, types, payloads, ts, hashes)
SELECT id, stream, seq, seq, ARRAY[type], ARRAY[payload], ARRAY[ts], ARRAY[hash]
FROM journal ORDER BY id;
SELECT setval(pg_get_serial_sequence('journal_batches', 'id'), coalesce(max(id), 0) + 1, false)
FROM journal_batches;

-- Positions kept elsewhere were old ids; event `id` is now at journal_position(id, 1).
UPDATE snapshots SET position = journal_position(position, 1) WHERE position > 0;
UPDATE projection SET last_id = journal_position(last_id, 1) WHERE last_id > 0;

DROP FUNCTION project_pending();
DROP FUNCTION journal_range(bigint, bigint);
DROP TABLE journal;

CREATE VIEW journal AS
SELECT journal_position(b.id, e.n) AS id, b.stream, b.first_seq + e.n - 1 AS seq,
       e.type, e.payload, e.ts, e.hash, b.id AS batch
FROM journal_batches b,
     unnest(b.types, b.payloads, b.ts, b.hashes) WITH ORDINALITY AS e (type, payload, ts, hash, n);

-- As 0002's, over the view; the condition on `batch` lets it read only the rows
-- that hold the range.
CREATE FUNCTION journal_range(first_id bigint, last_id bigint)
RETURNS TABLE (id bigint, stream text, type text, p json, ts bigint)
LANGUAGE sql STABLE
AS $$
SELECT id, stream, type, payload, ts FROM journal
WHERE batch BETWEEN first_id / 16777216 AND last_id / 16777216 AND id BETWEEN first_id AND last_id
$$;

-- The event at (at_stream, at_seq): its position and hash; no row if there is none.
CREATE FUNCTION journal_at(at_stream text, at_seq bigint) RETURNS TABLE (id bigint, hash bytea)
LANGUAGE sql STABLE
AS $$
SELECT journal_position(b.id, at_seq - b.first_seq + 1), b.hashes[at_seq - b.first_seq + 1]
FROM (
    SELECT id, first_seq, hashes FROM journal_batches
    WHERE stream = at_stream AND last_seq >= at_seq ORDER BY last_seq LIMIT 1
) AS b
WHERE b.first_seq <= at_seq
$$;

-- Append one write: a row per element of streams, with counts[i] events each,
-- taken in order from the flat arrays of the events' fields. Under the advisory
-- lock lock_key (the writers' own), so that ids follow commit order; raises
-- unique_violation, and writes nothing, if a row does not follow on from its
-- stream's last seq.
CREATE FUNCTION journal_append(
    lock_key bigint, streams text[], first_seqs bigint[], counts integer[],
    types text[], payloads json[], ts bigint[], hashes bytea[]
) RETURNS void
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    tip bigint;
    done integer := 0;
    n integer;
BEGIN
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
        VALUES (streams[i], first_seqs[i], first_seqs[i] + n - 1, types[done + 1 : done + n],
                payloads[done + 1 : done + n], ts[done + 1 : done + n], hashes[done + 1 : done + n]);
        done := done + n;
    END LOOP;
    IF done <> coalesce(cardinality(types), 0) THEN
        RAISE EXCEPTION 'journal_append: % events given, the counts add up to %',
            cardinality(types), done;
    END IF;
END
$$;

-- As 0002's, with the last position read from the last row.
CREATE FUNCTION project_pending() RETURNS bigint
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    done bigint;
    upto bigint;
BEGIN
    SELECT last_id INTO done FROM projection FOR UPDATE;
    SELECT coalesce(max(journal_position(id, last_seq - first_seq + 1)), 0) INTO upto
    FROM (SELECT id, first_seq, last_seq FROM journal_batches ORDER BY id DESC LIMIT 1) AS last;
    IF upto > done THEN
        PERFORM project_journal(done + 1, upto);
        UPDATE projection SET last_id = upto;
    END IF;
    RETURN greatest(upto, done);
END
$$;
