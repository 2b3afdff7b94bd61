# The big-read Cloud Run job (`tenantlake read-job`), for tenants too big
# for the Read function's 540 s: Read starts one execution per big tenant
# with TENANTLAKE_JOB_TENANT and TENANTLAKE_JOB_REQUEST_ID as overrides.
# Created only when big_read.image is set.

resource "google_cloud_run_v2_job" "big_read" {
  count = local.big_read_enabled ? 1 : 0

  project  = var.project
  location = var.region
  name     = local.names.big_read_job
  labels   = local.labels

  template {
    task_count  = var.big_read.task_count
    parallelism = var.big_read.parallelism

    template {
      service_account = google_service_account.big_read.email
      timeout         = "${var.big_read.timeout_seconds}s"
      max_retries     = var.big_read.max_retries

      dynamic "vpc_access" {
        for_each = var.vpc_connector != "" ? [var.vpc_connector] : []
        content {
          connector = vpc_access.value
          egress    = "PRIVATE_RANGES_ONLY"
        }
      }

      containers {
        image = var.big_read.image
        args  = ["read-job"]

        resources {
          limits = {
            memory = var.big_read.memory
            cpu    = var.big_read.cpu
          }
        }

        dynamic "env" {
          for_each = local.env.job
          content {
            name  = env.key
            value = env.value
          }
        }

        dynamic "volume_mounts" {
          for_each = local.read_mounts
          content {
            name       = volume_mounts.key
            mount_path = volume_mounts.value.mount_path
          }
        }
      }

      dynamic "volumes" {
        for_each = local.read_mounts
        content {
          name = volumes.key
          secret {
            secret = volumes.value.secret
            items {
              version = "latest"
              path    = volumes.value.path
            }
          }
        }
      }
    }
  }

  depends_on = [
    google_secret_manager_secret.tenant,
    google_secret_manager_secret_iam_member.big_read_tenant,
    google_secret_manager_secret_iam_member.big_read_registry,
  ]
}
