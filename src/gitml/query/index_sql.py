"""The run index's tables and the queries that read them (`gitml.query.index`)."""

TABLES = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS commits(oid TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS blobs(
    blob TEXT PRIMARY KEY, strict INTEGER, kinds INTEGER, running INTEGER, error TEXT, row TEXT);
CREATE TABLE IF NOT EXISTS kinds(id INTEGER PRIMARY KEY, kinds TEXT UNIQUE);
CREATE TABLE IF NOT EXISTS versions(run_id TEXT, blob TEXT, oid TEXT, time INTEGER);
CREATE INDEX IF NOT EXISTS versions_oid ON versions(oid);
CREATE INDEX IF NOT EXISTS versions_blob ON versions(blob);
CREATE TABLE IF NOT EXISTS runs(
    run_id TEXT PRIMARY KEY, blob TEXT, time INTEGER, oid TEXT, landed TEXT, landed_time INTEGER);
CREATE TABLE IF NOT EXISTS workfiles(
    run_id TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ino INTEGER, blob TEXT,
    running INTEGER);
CREATE INDEX IF NOT EXISTS workfiles_running ON workfiles(running) WHERE running;
CREATE INDEX IF NOT EXISTS runs_blob ON runs(blob);
CREATE INDEX IF NOT EXISTS runs_landed ON runs(landed);
CREATE INDEX IF NOT EXISTS workfiles_blob ON workfiles(blob);
CREATE TABLE IF NOT EXISTS outputs(blob TEXT, path TEXT, md5 TEXT);
CREATE INDEX IF NOT EXISTS outputs_md5 ON outputs(md5);
CREATE INDEX IF NOT EXISTS outputs_path ON outputs(path);
CREATE INDEX IF NOT EXISTS outputs_blob ON outputs(blob);
"""

# Each run's shown version (the working tree's, else the newest committed), for filtered reads.
CURRENT = """
WITH current(run_id, blob, landed, oid, local) AS (
  SELECT r.run_id, coalesce(w.blob, r.blob), r.landed, r.oid, w.blob IS NOT NULL
  FROM runs r LEFT JOIN workfiles w ON w.run_id = r.run_id
  UNION ALL
  SELECT w.run_id, w.blob, NULL, NULL, 1 FROM workfiles w
  WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = w.run_id))
SELECT c.run_id, b.row, b.error, c.landed, c.oid, c.blob, c.local
FROM current c JOIN blobs b ON b.blob = c.blob
"""

# Unfiltered, the same as two streamed halves (the CTE would be materialized first).
ALL = """
SELECT r.run_id, b.row, b.error, r.landed, r.oid, b.blob, w.blob IS NOT NULL
FROM runs r LEFT JOIN workfiles w ON w.run_id = r.run_id
JOIN blobs b ON b.blob = coalesce(w.blob, r.blob)
UNION ALL
SELECT w.run_id, b.row, b.error, NULL, NULL, b.blob, 1
FROM workfiles w JOIN blobs b ON b.blob = w.blob
WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = w.run_id)
"""

# Each run's shown version, filtered on its blob (`b`). The blobs are filtered first, in one
# pass over the table (a JSON condition is the costly part: 0.3 s for 100,000), and only the
# few that pass are joined to the runs that show them, through indexes.
ALL_WHERE = """
WITH hit(blob) AS MATERIALIZED (SELECT b.blob FROM blobs b WHERE {0})
SELECT r.run_id, b.row, b.error, r.landed, r.oid, b.blob, 0
FROM hit JOIN runs r ON r.blob = hit.blob JOIN blobs b ON b.blob = hit.blob
WHERE NOT EXISTS (SELECT 1 FROM workfiles w WHERE w.run_id = r.run_id)
UNION ALL
SELECT w.run_id, b.row, b.error, r.landed, r.oid, b.blob, 1
FROM hit JOIN workfiles w ON w.blob = hit.blob JOIN blobs b ON b.blob = hit.blob
LEFT JOIN runs r ON r.run_id = w.run_id
"""

# How many shown runs have each set of field kinds (a few distinct sets, whatever the history).
KINDS = """
SELECT k.kinds, count(*) FROM (
  SELECT b.kinds AS id FROM runs r LEFT JOIN workfiles w ON w.run_id = r.run_id
  JOIN blobs b ON b.blob = coalesce(w.blob, r.blob)
  UNION ALL
  SELECT b.kinds FROM workfiles w JOIN blobs b ON b.blob = w.blob
  WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = w.run_id)) shown
JOIN kinds k ON k.id = shown.id GROUP BY k.id
"""

# Conditions for `RunIndex.scan` (over the columns of `CURRENT`).
BY_ID = "c.run_id = ?"
BY_PREFIX = "c.run_id >= ? AND c.run_id < ? || char(1114111)"
LANDED_IN = "c.landed IS ?"
# A probe of the shown blob's own outputs: `c.blob IN (SELECT blob FROM outputs WHERE ...)`
# built the list of every blob that ever wrote the path, for each run read (6 ms a run for a
# path that 2,000 prepare runs wrote: 7 s for `gitml lineage <path>` at 100,000 runs).
PRODUCED = "EXISTS (SELECT 1 FROM outputs o WHERE o.blob = c.blob AND o.md5 = ?)"
WROTE = "EXISTS (SELECT 1 FROM outputs o WHERE o.blob = c.blob AND o.path = ?)"
# A condition on the computed `c.blob` scans every run (0.4 s at 100,000): for these two the
# runs are found from the outputs table first, through its indexes, then each is read by id.
BY_OUTPUT = {PRODUCED: "md5", WROTE: "path"}
OUTPUT_RUNS = """
SELECT v.run_id FROM outputs o JOIN versions v ON v.blob = o.blob WHERE o.{0} = ?1
UNION SELECT w.run_id FROM outputs o JOIN workfiles w ON w.blob = o.blob WHERE o.{0} = ?1
"""

# Each run's row in `runs`, from its versions: the newest (a tie: the last stored) and the first
# commit that held it (a tie: the first stored); {0} narrows the versions read.
NEWEST_AND_FIRST = """
SELECT run_id, blob, time, oid, landed, landed_time FROM (
  SELECT run_id, blob, time, oid,
    row_number() OVER (PARTITION BY run_id ORDER BY time DESC, rowid DESC) AS rn,
    first_value(oid) OVER (PARTITION BY run_id ORDER BY time, rowid) AS landed,
    min(time) OVER (PARTITION BY run_id) AS landed_time
  FROM versions {0}) WHERE rn = 1"""
