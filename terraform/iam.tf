# One service account per role, each granted only what it needs, on the
# narrowest resource that holds it (bucket, topic, secret, dataset, job,
# function). Nothing here is project-wide except what BigQuery and Cloud
# Logging only grant per project (jobs, dataset creation, log writing).
# terraform_test.go holds the exact expected set and fails on any change.
#
#   scheduler  runs Schedule: reads the registry, records requests in the lake,
#              publishes read-requests
#   trigger    Cloud Scheduler's OIDC identity: may invoke Schedule, nothing else
#   reader     runs Read: tenant secrets, the registry, the lake, publishes
#              snapshots and loads (a failed read), dead-letters read-requests,
#              starts the big-read job with overrides
#   big_read   runs the big-read job: what Read does, without the job
#   loader     one per target, runs that target's Load: reads the lake, writes
#              its ledger, publishes loads, dead-letters snapshots; its
#              warehouse password or its BigQuery datasets
#   console    runs Replay and Snapshots: reads the lake, publishes snapshots
#   push       the push subscriptions' OIDC identity: may invoke Read and Load
#   build      builds the functions (Cloud Build): reads the source archive,
#              pushes images to the module's repository, writes build logs

resource "google_service_account" "scheduler" {
  project      = var.project
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "tenantlake Schedule function"
}

resource "google_service_account" "trigger" {
  project      = var.project
  account_id   = "${var.name_prefix}-trigger"
  display_name = "tenantlake Cloud Scheduler job (invokes Schedule)"
}

resource "google_service_account" "reader" {
  project      = var.project
  account_id   = "${var.name_prefix}-reader"
  display_name = "tenantlake Read function"
}

resource "google_service_account" "big_read" {
  project      = var.project
  account_id   = "${var.name_prefix}-big-read"
  display_name = "tenantlake big-read Cloud Run job"
}

resource "google_service_account" "loader" {
  for_each = var.targets

  project      = var.project
  account_id   = "${var.name_prefix}-load-${replace(each.key, "_", "-")}"
  display_name = "tenantlake Load function of target ${each.key}"
}

resource "google_service_account" "console" {
  project      = var.project
  account_id   = "${var.name_prefix}-console"
  display_name = "tenantlake Replay and Snapshots functions"
}

resource "google_service_account" "push" {
  project      = var.project
  account_id   = "${var.name_prefix}-push"
  display_name = "tenantlake Pub/Sub push subscriptions (invoke Read and Load)"
}

resource "google_service_account" "build" {
  project      = var.project
  account_id   = "${var.name_prefix}-build"
  display_name = "tenantlake function builds"
}

# ---- the lake bucket ----
# Objects are written once with an if-not-exists precondition, which
# objectCreator allows; nothing but `tenantlake gc` (run by an operator)
# deletes, so no function can delete or overwrite lake objects.

resource "google_storage_bucket_iam_member" "lake_viewer" {
  for_each = {
    scheduler = google_service_account.scheduler.email
    reader    = google_service_account.reader.email
    big_read  = google_service_account.big_read.email
    console   = google_service_account.console.email
  }

  bucket = google_storage_bucket.lake.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${each.value}"
}

resource "google_storage_bucket_iam_member" "lake_creator" {
  for_each = {
    scheduler = google_service_account.scheduler.email
    reader    = google_service_account.reader.email
    big_read  = google_service_account.big_read.email
  }

  bucket = google_storage_bucket.lake.name
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${each.value}"
}

# BigQuery load jobs read the parts with the loader's own credentials.
resource "google_storage_bucket_iam_member" "lake_loader_viewer" {
  for_each = google_service_account.loader

  bucket = google_storage_bucket.lake.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${each.value.email}"
}

resource "google_storage_bucket_iam_member" "lake_loader_creator" {
  for_each = google_service_account.loader

  bucket = google_storage_bucket.lake.name
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${each.value.email}"
}

# ---- topics ----

resource "google_pubsub_topic_iam_member" "scheduler_publishes_read_requests" {
  project = var.project
  topic   = google_pubsub_topic.read_requests.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.scheduler.email}"
}

resource "google_pubsub_topic_iam_member" "snapshots_publishers" {
  for_each = {
    reader   = google_service_account.reader.email
    big_read = google_service_account.big_read.email
    console  = google_service_account.console.email
  }

  project = var.project
  topic   = google_pubsub_topic.snapshots.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${each.value}"
}

# A failed read is reported on loads, as every load outcome is.
resource "google_pubsub_topic_iam_member" "loads_publishers" {
  for_each = {
    reader   = google_service_account.reader.email
    big_read = google_service_account.big_read.email
  }

  project = var.project
  topic   = google_pubsub_topic.loads.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${each.value}"
}

resource "google_pubsub_topic_iam_member" "loader_publishes_loads" {
  for_each = google_service_account.loader

  project = var.project
  topic   = google_pubsub_topic.loads.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${each.value.email}"
}

# Read and Load copy a message no retry can fix to their topic's dead-letter
# topic themselves (with the reason) and acknowledge it.
resource "google_pubsub_topic_iam_member" "reader_dead_letters" {
  project = var.project
  topic   = google_pubsub_topic.read_requests_dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.reader.email}"
}

resource "google_pubsub_topic_iam_member" "loader_dead_letters" {
  for_each = google_service_account.loader

  project = var.project
  topic   = google_pubsub_topic.snapshots_dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${each.value.email}"
}

# Projects created before 8 April 2021 need the Pub/Sub service agent to be
# able to mint the push identity's OIDC tokens; granted on that one account.
resource "google_service_account_iam_member" "agent_mints_push_tokens" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# ---- who invokes which function (Cloud Run services of the functions) ----

resource "google_cloud_run_v2_service_iam_member" "trigger_invokes_schedule" {
  project  = var.project
  location = var.region
  name     = google_cloudfunctions2_function.schedule.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

resource "google_cloud_run_v2_service_iam_member" "push_invokes_read" {
  project  = var.project
  location = var.region
  name     = google_cloudfunctions2_function.read.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push.email}"
}

resource "google_cloud_run_v2_service_iam_member" "push_invokes_load" {
  for_each = google_cloudfunctions2_function.load

  project  = var.project
  location = var.region
  name     = each.value.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push.email}"
}

resource "google_cloud_run_v2_service_iam_member" "analysts_invoke_replay" {
  project  = var.project
  location = var.region
  name     = google_cloudfunctions2_function.replay.name
  role     = "roles/run.invoker"
  member   = "group:${var.analysts_group}"
}

resource "google_cloud_run_v2_service_iam_member" "analysts_invoke_snapshots" {
  project  = var.project
  location = var.region
  name     = google_cloudfunctions2_function.snapshots.name
  role     = "roles/run.invoker"
  member   = "group:${var.analysts_group}"
}

# ---- the big-read job ----
# Cloud Run Jobs Executor With Overrides (run.jobs.run,
# run.jobs.runWithOverrides, run.executions.cancel), on the job only:
# roles/run.invoker cannot override (TENANTLAKE_JOB_TENANT per execution),
# roles/run.developer could also change the job.

resource "google_cloud_run_v2_job_iam_member" "reader_runs_big_read" {
  count = local.big_read_enabled ? 1 : 0

  project  = var.project
  location = var.region
  name     = google_cloud_run_v2_job.big_read[0].name
  role     = "roles/run.jobsExecutorWithOverrides"
  member   = "serviceAccount:${google_service_account.reader.email}"
}

# ---- BigQuery targets ----
# Jobs (loads, copies, queries) and dataset creation exist only per project:
# roles/bigquery.jobUser, and a custom role holding nothing but
# bigquery.datasets.create. A dataset's creator becomes its OWNER, so each
# loader owns the tenant datasets it creates and nothing else; on the
# staging, ledger and all-tenants datasets it is dataEditor.

resource "google_project_iam_custom_role" "dataset_creator" {
  for_each = local.bigquery_projects

  project     = each.value
  role_id     = "${replace(var.name_prefix, "-", "_")}_dataset_creator"
  title       = "tenantlake BigQuery dataset creator"
  description = "Create BigQuery datasets (tenant datasets, created by the loader on a tenant's first load). Nothing else."
  permissions = ["bigquery.datasets.create"]
}

resource "google_project_iam_member" "loader_bigquery_jobs" {
  for_each = local.bigquery_targets

  project = each.value.project
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${google_service_account.loader[each.key].email}"
}

resource "google_project_iam_member" "loader_creates_datasets" {
  for_each = local.bigquery_targets

  project = each.value.project
  role    = google_project_iam_custom_role.dataset_creator[each.value.project].id
  member  = "serviceAccount:${google_service_account.loader[each.key].email}"
}

resource "google_bigquery_dataset_iam_member" "loader_staging" {
  for_each = google_bigquery_dataset.staging

  project    = each.value.project
  dataset_id = each.value.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.loader[each.key].email}"
}

resource "google_bigquery_dataset_iam_member" "loader_ledger" {
  for_each = google_bigquery_dataset.ledger

  project    = each.value.project
  dataset_id = each.value.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.loader[each.key].email}"
}

resource "google_bigquery_dataset_iam_member" "loader_all_tenants" {
  for_each = google_bigquery_dataset.all_tenants

  project    = each.value.project
  dataset_id = each.value.dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.loader[each.key].email}"
}

# ---- builds ----

resource "google_storage_bucket_iam_member" "build_reads_sources" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

resource "google_artifact_registry_repository_iam_member" "build_pushes_images" {
  project    = var.project
  location   = var.region
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.build.email}"
}

resource "google_project_iam_member" "build_writes_logs" {
  project = var.project
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.build.email}"
}
