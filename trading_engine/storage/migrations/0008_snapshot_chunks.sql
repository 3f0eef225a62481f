-- A snapshot's state in chunks, so that it may outgrow one bytea value.
--
-- 0003 kept the pickled state in one `snapshots.state` value, which
-- PostgreSQL caps at 1 GB and which the engine had to build, send and
-- receive whole. An exchange with millions of open orders and accounts
-- passes that, and then every snapshot failed and each start replayed the
-- whole journal. Now the state is split into `snapshot_chunks`, written in
-- the transaction that writes the snapshot's row and deleted with it.
--
-- size   the state's length in bytes. A snapshot is used only if its chunks
--        are numbered 0, 1, 2, ... with no gap and their lengths add up to
--        it: one whose chunks are incomplete (a partial restore, a chunk
--        deleted by hand) is ignored like any other stale cache, and the
--        journal replayed instead.
-- chunk  a chunk's place in the state, from 0; its `data` is at most the
--        size the engine writes with (trading_engine/storage/postgres.py).
--
-- The snapshots saved before this migration are moved into chunks here,
-- each state as one chunk (it already fits one value), and the `state`
-- column is dropped: loading then has one way to read a state, not a second
-- one for old rows kept forever. There are at most two, and moving them
-- writes their states once more, as saving them did.

CREATE TABLE snapshot_chunks (
    snapshot_id bigint   NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
    chunk       integer  NOT NULL CHECK (chunk >= 0),
    data        bytea    NOT NULL,
    PRIMARY KEY (snapshot_id, chunk)
);

-- As 0003 did for `state`: already compact, and read whole.
ALTER TABLE snapshot_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

ALTER TABLE snapshots ADD COLUMN size bigint CHECK (size >= 0);

INSERT INTO snapshot_chunks (snapshot_id, chunk, data)
SELECT id, 0, state FROM snapshots;
UPDATE snapshots SET size = octet_length(state);

ALTER TABLE snapshots ALTER COLUMN size SET NOT NULL;
ALTER TABLE snapshots DROP COLUMN state;
