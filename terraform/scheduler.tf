# The daily read: Cloud Scheduler calls Schedule with an OIDC token of its
# own service account (trigger, which may invoke Schedule and nothing else).
# Schedule only publishes, so it answers well within attempt_deadline.

resource "google_cloud_scheduler_job" "daily_read" {
  project          = var.project
  region           = var.region
  name             = local.names.scheduler_job
  description      = "tenantlake: one read request per active tenant"
  schedule         = var.schedule
  time_zone        = var.time_zone
  attempt_deadline = "${var.schedule_attempt_deadline_seconds}s"

  retry_config {
    retry_count          = var.schedule_retry_count
    min_backoff_duration = "30s"
    max_backoff_duration = "600s"
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.schedule.service_config[0].uri

    oidc_token {
      service_account_email = google_service_account.trigger.email
      audience              = google_cloudfunctions2_function.schedule.service_config[0].uri
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.trigger_invokes_schedule]
}
