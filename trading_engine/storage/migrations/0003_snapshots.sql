-- Snapshots: the engine's state after every journal row up to `position` (a
-- journal id), so that a start replays only the rows after it. A cache of
-- the journal, never the record: recovery ignores a snapshot whose `version`
-- is not the running code's, or whose tips the journal no longer holds.
--
-- tips   {stream: [seq, hash]}: each stream's last row at `position`, with its
--        chain hash in hex. The hash covers the whole stream up to that row,
--        so a journal restored from another history does not match.
-- state  the actors' state, pickled (trading_engine/actors/snapshot.py).
CREATE TABLE snapshots (
    id         bigserial PRIMARY KEY,
    position   bigint      NOT NULL,
    version    text        NOT NULL,
    tips       jsonb       NOT NULL,
    events     bigint      NOT NULL,
    state      bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The state is already compact and read whole: store it out of line without
-- pglz compression, which would cost more time than it saves space.
ALTER TABLE snapshots ALTER COLUMN state SET STORAGE EXTERNAL;
