output "lake_url" {
  description = "TENANTLAKE_LAKE of every function: the lake's gs:// URL (use it with `tenantlake --lake`)."
  value       = local.lake_url
}

output "lake_bucket" {
  description = "Name of the lake bucket."
  value       = google_storage_bucket.lake.name
}

output "function_urls" {
  description = "URL of each function (load: one per target). Call Replay and Snapshots with an identity token of a member of analysts_group."
  value = {
    schedule  = google_cloudfunctions2_function.schedule.service_config[0].uri
    read      = google_cloudfunctions2_function.read.service_config[0].uri
    load      = { for k, f in google_cloudfunctions2_function.load : k => f.service_config[0].uri }
    replay    = google_cloudfunctions2_function.replay.service_config[0].uri
    snapshots = google_cloudfunctions2_function.snapshots.service_config[0].uri
  }
}

output "topics" {
  description = "Pub/Sub topic names, as the TENANTLAKE_TOPIC_* variables give them to the functions."
  value       = local.topics
}

output "subscriptions" {
  description = "Pub/Sub subscription names: read (push to Read), load (push to each target's Load), loads_watch (pull, for observers) and keep (pull, on each dead-letter topic)."
  value       = local.subscriptions
}

output "secrets" {
  description = "Secret Manager secret ids to add values to (gcloud secrets versions add ID --data-file=-): tenant connection strings, the registry, the PostgreSQL targets' .pgpass lines."
  value = {
    tenants  = { for t, s in google_secret_manager_secret.tenant : t => s.secret_id }
    registry = google_secret_manager_secret.registry.secret_id
    targets  = { for k, s in google_secret_manager_secret.target : k => s.secret_id }
  }
}

output "registry" {
  description = "TENANTLAKE_REGISTRY of Schedule and Read, and the tenant connection reference to use for each tenant of var.tenants."
  value = {
    reference   = local.registry_ref
    connections = { for t in var.tenants : t => "file:/secrets/${t}/dsn" }
  }
}

output "service_accounts" {
  description = "Email of each service account the module creates."
  value = {
    scheduler = google_service_account.scheduler.email
    trigger   = google_service_account.trigger.email
    reader    = google_service_account.reader.email
    big_read  = google_service_account.big_read.email
    loader    = { for k, sa in google_service_account.loader : k => sa.email }
    console   = google_service_account.console.email
    push      = google_service_account.push.email
    build     = google_service_account.build.email
  }
}

output "scheduler_job" {
  description = "Cloud Scheduler job that calls Schedule (gcloud scheduler jobs run NAME --location REGION runs it now)."
  value       = google_cloud_scheduler_job.daily_read.name
}

output "big_read_job" {
  description = "Full name of the big-read Cloud Run job (TENANTLAKE_BIG_READ_JOB), or null when big_read.image is empty."
  value       = local.big_read_enabled ? local.big_read_job : null
}

output "bigquery_datasets" {
  description = "The staging, ledger and all-tenants datasets of each bigquery target."
  value = {
    for k, b in local.bigquery_targets : k => {
      project     = b.project
      staging     = google_bigquery_dataset.staging[k].dataset_id
      ledger      = google_bigquery_dataset.ledger[k].dataset_id
      all_tenants = google_bigquery_dataset.all_tenants[k].dataset_id
    }
  }
}
