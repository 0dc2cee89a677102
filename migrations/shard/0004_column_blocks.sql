-- flowrec shard schema: the column blocks of a merged shard (created by the merger).
-- Generated from ColumnBlocks (Sources/ShardStore/Index/ColumnBlocks.swift) by
-- `flowrec schema --write-migrations`.

-- Per field of meta.column_blocks and granule of `granules`: the granule's values of
-- that field in row order, each a varint: 0 for NULL, else zigzag(value) + 1 (text
-- fields: the id of the string in `strings`). Rows are in field order, then granule order.
CREATE TABLE column_blocks (
    field TEXT NOT NULL,
    first_rowid INTEGER NOT NULL,
    last_rowid INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX column_blocks_by_field ON column_blocks (field, first_rowid);
