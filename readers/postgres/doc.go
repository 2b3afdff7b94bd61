// Package postgres is the PostgreSQL read strategy: it reads one tenant's
// database in one consistent snapshot and writes it to the lake as Parquet
// parts plus a manifest, committed last.
//
// # Snapshot
//
// Read opens a read-only REPEATABLE READ transaction, exports its snapshot
// (pg_export_snapshot) and reads every table through Options.Parallel worker
// connections that import it (SET TRANSACTION SNAPSHOT), so all tables and all
// ranges of a table see the same instant. Like pg_dump, the exporting
// transaction holds ACCESS SHARE locks on the tables it reads (materialized
// views excepted) until the end, so none is dropped or altered under the
// workers. The snapshot id is the start of that transaction. The manifest
// records the server version, pg_current_snapshot() and the WAL LSN.
//
// Every session SETs its time zone (UTC), date and interval styles, float
// digits and bytea output, and turns statement and idle-in-transaction
// timeouts off, overriding role, database and environment defaults (PGTZ,
// PGOPTIONS). As in pg_dump, row_security is off: a table whose row-level
// security would hide rows from the role fails the read rather than being
// read in part.
//
// # Locks
//
// Every wait for a table lock is bounded by Options.LockTimeout (PostgreSQL's
// lock_timeout, in every session): the exporting transaction's LOCK TABLE,
// and a worker's SELECT, which waits only behind an ACCESS EXCLUSIVE request
// queued after the read's own lock (that request waits for the read to end,
// so an unbounded wait would never end). A wait that times out is rolled
// back to a savepoint, logged with the blocking locks, and retried after a
// pause of half the timeout, doubling, Options.LockAttempts times in all
// (defaults: 5s, 4). Then the read fails with ErrLockTimeout, naming the
// table and each blocking lock: pid, mode, held or waiting, and from
// pg_stat_activity the user, application, state and transaction start,
// never a query's text. Table listing and description read the catalog only
// and wait for no lock. While a read runs, Options.Logger gets a line every
// Options.LogInterval (30s) with the tenant, phase, tables being read and
// rows and bytes so far.
//
// # Tables
//
// Every ordinary and partitioned table the role can SELECT, outside the
// system schemas (with Options.Views also views and materialized views),
// filtered by the tenant's include and exclude patterns
// (path.Match on "schema.table"). A partitioned table is one table (read leaf
// by leaf when the role may read each leaf). Tables without columns are listed
// in Manifest.Skipped. Tables of schema public are named by their table name,
// others "schema_table"; table and column names are mapped to lower-case
// [a-z0-9_] names of at most 63 bytes, collisions resolved with "_2", "_3", ...
// in source order. Names are stable across a tenant's snapshots: a table or
// column keeps the destination name it had in the tenant's newest committed
// snapshot, and no other source gets a name that snapshot used
// (docs/types.md, Names). A policy that matches no column of a read table
// fails the read with ErrPolicy, unless its table exists but is not read.
//
// # Types
//
// docs/types.md is the mapping from PostgreSQL to Parquet to BigQuery types,
// and the definition of the profile figures. A value its Parquet type cannot
// carry exactly fails the read with an error naming tenant, table, column and
// row key, unless Options.Policies says otherwise for that column.
//
// # Streaming
//
// Rows are fetched in PostgreSQL's binary format where it is exact (text
// output otherwise) and written as they arrive: per range, one goroutine
// receives and converts rows in batches (at most 1024 rows or 1 MiB) while
// another encodes and uploads them. Row groups and parts are
// bounded by Options.RowGroupBytes and Options.PartBytes, pages are compressed
// with zstd. Tables larger than Options.SplitBytes are split into ctid ranges,
// each written as its own parts. The first range of every table writes at
// least one part, so an empty table has one zero-row part with the full schema.
//
// # Failure
//
// On any error (a bad value, a lost connection, a cancelled ctx) Read returns
// an error naming the tenant and table, aborts the part being uploaded and
// writes no manifest; parts already written are orphans for lake GC.
//
// # Distributed reads
//
// ReadTask runs one task of a read shared by many processes (the big-read
// Cloud Run job, or `tenantlake read --workers N`): task 0 exports the
// snapshot, plans and commits; every task imports the snapshot and takes
// ranges with write-once claim records in the snapshot's folder
// (lake.Snapshot records), writing parts with deterministic names per range
// attempt and a completion record per range, which task 0 merges into the
// manifest. EstimateBytes sizes a tenant from the catalog, to decide. See
// ReadTask for the protocol and its faults.
//
// # Reading parts back
//
// Parts are plain Parquet files; read them with parquet-go's generic reader
// (parquet.OpenFile on lake.Lake.OpenPart, then ReadRows) or arrow-go's
// pqarrow. Column order in a part is the manifest's column order.
package postgres
