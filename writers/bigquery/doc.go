// Package bigquery is the BigQuery write strategy (writers.Writer), on
// cloud.google.com/go/bigquery. It loads one committed lake snapshot of one
// tenant into that tenant's dataset, following DESIGN.md.
//
// # Datasets
//
// Each tenant has a dataset named by Config.DatasetTemplate
// ("tenant_{tenant}"), created on its first load in Config.Location with
// Config.Labels. Staged tables live in one staging dataset whose default
// table expiration (Config.StagingExpiration) removes them by themselves.
// The all-tenants dataset holds one view per table name; the ledger dataset
// holds the table "loads".
//
// # Loading
//
//  1. Stage. Each table is loaded into a fresh staging table
//     "<tenant>__<short snapshot>__a<attempt>__<table>", created first with
//     the manifest's schema (types from Column.BigQueryType, REQUIRED for
//     non-nullable columns; never autodetected), so an empty table keeps
//     its columns. When the lake is on GCS, one load job reads the parts'
//     gs:// URIs listed in the manifest; otherwise each part is streamed
//     through the load API (one job per part, the first WRITE_TRUNCATE,
//     the others WRITE_APPEND). Load jobs read Parquet with
//     decimalTargetTypes NUMERIC, BIGNUMERIC and list inference on.
//  2. Validate, before anything is live: rows from the jobs' statistics and
//     COUNT(*) (always); per column nulls, min, max and sums, computed by
//     one SQL query per table and compared by value with the manifest's
//     profile (exact for integers and decimals, summed as BIGNUMERIC; float
//     sums within a relative 1e-9, NaN equal to NaN, min/max over non-NaN);
//     the staged table's schema against the manifest's. Profiles and schema
//     can be switched off (Config.SkipProfiles, SkipSchema). Any failed
//     check quarantines the load: nothing is promoted, the staged tables
//     stay for inspection, the outcome lists the failed checks.
//  3. Promote: a copy job per table with WRITE_TRUNCATE (Config.Promotion
//     "copy", the default) or CREATE OR REPLACE TABLE ... AS SELECT
//     ("ctas"); both are atomic per table. A full load then drops live
//     tables that the snapshot does not have.
//  4. Record what is live: labels tenantlake_live (lake.ShortSnapshotID)
//     and tenantlake_state on the tenant's dataset, changed only by a
//     compare-and-swap on the dataset's etag. The dataset is claimed
//     ("promoting") just before promotion and released ("live") after it;
//     a load that finds the live snapshot changed under it fails and can be
//     retried. A snapshot already live returns already-live; a scheduled
//     or manual load older than the live snapshot is skipped as stale; a
//     replay replaces it and says so in the outcome's message.
//  5. Rebuild the all-tenants views of the loaded tables: UNION ALL of
//     every tenant's live table with tenant_id first; a column a tenant
//     lacks is a typed NULL, a column of another type is SAFE_CAST.
//  6. Write the ledger: the outcome to the lake (lake.WriteLedger) and a
//     row to the ledger table, also for stale, quarantined and failed
//     loads.
//
// # Idempotency and retries
//
// Load job ids are derived from the staging dataset, tenant, snapshot,
// table, attempt and part (jobID). Before inserting a job the writer looks
// its id up and attaches to the job if it exists; if the insert fails and a
// job with that id exists by then (BigQuery: 409 Duplicate; the emulator:
// 400 for a reused id, see ENVIRONMENT.md), it attaches to it. A failed
// attempt is retried under the next attempt id (a fresh staging table) when
// retryable, the one place that decides it, says so; HTTP calls themselves
// are retried by the client library. Promotion job ids include the load id,
// since a replay promotes the same snapshot again.
//
// # What was verified where
//
// Against the BigQuery emulator (goccy/bigquery-emulator v0.6.6, with an
// in-process fake-gcs-server), in TestConformance, TestLoadCorpusFromGCS,
// TestLoadStreamedFromLocalLake and TestAllTenantsView: load jobs from gs://
// URIs and streamed parts, the schema of staged tables, the validation
// queries, CTAS promotion, dataset labels as the live record, the
// all-tenants views, the ledger table, and the whole load / redelivery /
// quarantine / stale / replay / concurrent tenants / interrupted load
// sequence of writers/writertest.
//
// Only by unit tests of the requests sent (TestLoadJobConfigurationSent,
// TestCopyJobConfigurationSent, TestRunJobAttachesOnConflict,
// TestClaimIsCompareAndSwap, against a recording HTTP server), because the
// emulator lacks them: copy jobs (it answers "unspecified job
// configuration"); decimalTargetTypes, parquetOptions and write
// dispositions (it ignores them: loads always append, which is why every
// attempt stages into a fresh table); 409 on a reused job id (it answers
// 400, after importing the data again: the writer's look-up before insert
// avoids that); dataset etags (it returns none and ignores If-Match, so on
// the emulator the compare-and-swap degrades to a plain update); merging
// of labels on update (it replaces the whole set, so the writer always
// sends its configured labels along); load job statistics (it reports
// none, so the "rows:job" check is recorded only where BigQuery reports
// them); table expiration.
//
// Not verified here at all: loading Parquet's JSON logical type into a
// JSON column on real BigQuery (the emulator stores the text), and
// resumable uploads of parts larger than the client's 16 MiB chunk (the
// emulator would treat each chunk as a file).
package bigquery
