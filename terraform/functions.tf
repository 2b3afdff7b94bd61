# The Cloud Functions (2nd gen). Every deployment builds the same source
# archive (`make package`); its entry point (FUNCTION_TARGET) picks one of
# the functions that package github.com/tenantlake/tenantlake/functions
# registers. None has an Eventarc trigger: Read and Load are pushed to by
# the subscriptions of pubsub.tf, Schedule is called by Cloud Scheduler,
# Replay and Snapshots by analysts. Each runs as its own service account.

resource "google_artifact_registry_repository" "functions" {
  project       = var.project
  location      = var.region
  repository_id = local.names.repository
  format        = "DOCKER"
  description   = "Images of the tenantlake functions, built from the source archive"
  labels        = local.labels

  depends_on = [google_project_service.apis]
}

resource "google_cloudfunctions2_function" "schedule" {
  project     = var.project
  location    = var.region
  name        = local.names.schedule
  description = "tenantlake Schedule: one read request per active tenant (called by Cloud Scheduler)"
  labels      = local.labels

  build_config {
    runtime           = var.go_runtime
    entry_point       = local.entry_points.schedule
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id

    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.scheduler.email
    available_memory                 = local.fn.schedule.memory
    available_cpu                    = local.fn.schedule.cpu
    timeout_seconds                  = local.fn.schedule.timeout_seconds
    max_instance_count               = local.fn.schedule.max_instances
    min_instance_count               = local.fn.schedule.min_instances
    max_instance_request_concurrency = local.fn.schedule.concurrency
    ingress_settings                 = var.pipeline_ingress
    all_traffic_on_latest_revision   = true
    vpc_connector                    = var.vpc_connector != "" ? var.vpc_connector : null
    vpc_connector_egress_settings    = var.vpc_connector != "" ? "PRIVATE_RANGES_ONLY" : null
    environment_variables            = local.env.schedule

    dynamic "secret_volumes" {
      for_each = local.registry_mount
      content {
        mount_path = secret_volumes.value.mount_path
        project_id = var.project
        secret     = secret_volumes.value.secret
        versions {
          version = "latest"
          path    = secret_volumes.value.path
        }
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.scheduler_registry,
    google_storage_bucket_iam_member.build_reads_sources,
    google_artifact_registry_repository_iam_member.build_pushes_images,
    google_project_iam_member.build_writes_logs,
  ]
}

resource "google_cloudfunctions2_function" "read" {
  project     = var.project
  location    = var.region
  name        = local.names.read
  description = "tenantlake Read: one tenant's database into a committed lake snapshot (pushed from read-requests)"
  labels      = local.labels

  build_config {
    runtime           = var.go_runtime
    entry_point       = local.entry_points.read
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id

    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.reader.email
    available_memory                 = local.fn.read.memory
    available_cpu                    = local.fn.read.cpu
    timeout_seconds                  = local.fn.read.timeout_seconds
    max_instance_count               = local.fn.read.max_instances
    min_instance_count               = local.fn.read.min_instances
    max_instance_request_concurrency = local.fn.read.concurrency
    ingress_settings                 = var.pipeline_ingress
    all_traffic_on_latest_revision   = true
    vpc_connector                    = var.vpc_connector != "" ? var.vpc_connector : null
    vpc_connector_egress_settings    = var.vpc_connector != "" ? "PRIVATE_RANGES_ONLY" : null
    environment_variables            = local.env.read

    dynamic "secret_volumes" {
      for_each = local.read_mounts
      content {
        mount_path = secret_volumes.value.mount_path
        project_id = var.project
        secret     = secret_volumes.value.secret
        versions {
          version = "latest"
          path    = secret_volumes.value.path
        }
      }
    }
  }

  depends_on = [
    google_secret_manager_secret.tenant,
    google_secret_manager_secret_iam_member.reader_tenant,
    google_secret_manager_secret_iam_member.reader_registry,
    google_storage_bucket_iam_member.build_reads_sources,
    google_artifact_registry_repository_iam_member.build_pushes_images,
    google_project_iam_member.build_writes_logs,
  ]
}

resource "google_cloudfunctions2_function" "load" {
  for_each = var.targets

  project     = var.project
  location    = var.region
  name        = local.names.load[each.key]
  description = "tenantlake Load into target ${each.key} (pushed from snapshots)"
  labels      = merge(local.labels, { target = each.key })

  build_config {
    runtime           = var.go_runtime
    entry_point       = local.entry_points.load
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id

    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.loader[each.key].email
    available_memory                 = local.fn.load.memory
    available_cpu                    = local.fn.load.cpu
    timeout_seconds                  = local.fn.load.timeout_seconds
    max_instance_count               = local.fn.load.max_instances
    min_instance_count               = local.fn.load.min_instances
    max_instance_request_concurrency = local.fn.load.concurrency
    ingress_settings                 = var.pipeline_ingress
    all_traffic_on_latest_revision   = true
    vpc_connector                    = var.vpc_connector != "" ? var.vpc_connector : null
    vpc_connector_egress_settings    = var.vpc_connector != "" ? "PRIVATE_RANGES_ONLY" : null
    environment_variables            = local.env.load[each.key]

    dynamic "secret_volumes" {
      for_each = contains(keys(local.target_secrets), each.key) ? { target = local.target_secrets[each.key] } : {}
      content {
        mount_path = "/secrets/_target"
        project_id = var.project
        secret     = secret_volumes.value
        versions {
          version = "latest"
          path    = "pgpass"
        }
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.loader_target,
    google_storage_bucket_iam_member.build_reads_sources,
    google_artifact_registry_repository_iam_member.build_pushes_images,
    google_project_iam_member.build_writes_logs,
  ]
}

resource "google_cloudfunctions2_function" "replay" {
  project     = var.project
  location    = var.region
  name        = local.names.replay
  description = "tenantlake Replay: load a tenant as of a time again (analysts)"
  labels      = local.labels

  build_config {
    runtime           = var.go_runtime
    entry_point       = local.entry_points.replay
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id

    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.console.email
    available_memory                 = local.fn.replay.memory
    available_cpu                    = local.fn.replay.cpu
    timeout_seconds                  = local.fn.replay.timeout_seconds
    max_instance_count               = local.fn.replay.max_instances
    min_instance_count               = local.fn.replay.min_instances
    max_instance_request_concurrency = local.fn.replay.concurrency
    ingress_settings                 = var.analyst_ingress
    all_traffic_on_latest_revision   = true
    environment_variables            = local.env.replay
  }

  depends_on = [
    google_storage_bucket_iam_member.build_reads_sources,
    google_artifact_registry_repository_iam_member.build_pushes_images,
    google_project_iam_member.build_writes_logs,
  ]
}

resource "google_cloudfunctions2_function" "snapshots" {
  project     = var.project
  location    = var.region
  name        = local.names.snapshots
  description = "tenantlake Snapshots: a tenant's snapshots and their loads (analysts)"
  labels      = local.labels

  build_config {
    runtime           = var.go_runtime
    entry_point       = local.entry_points.snapshots
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id

    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.console.email
    available_memory                 = local.fn.snapshots.memory
    available_cpu                    = local.fn.snapshots.cpu
    timeout_seconds                  = local.fn.snapshots.timeout_seconds
    max_instance_count               = local.fn.snapshots.max_instances
    min_instance_count               = local.fn.snapshots.min_instances
    max_instance_request_concurrency = local.fn.snapshots.concurrency
    ingress_settings                 = var.analyst_ingress
    all_traffic_on_latest_revision   = true
    environment_variables            = local.env.snapshots
  }

  depends_on = [
    google_storage_bucket_iam_member.build_reads_sources,
    google_artifact_registry_repository_iam_member.build_pushes_images,
    google_project_iam_member.build_writes_logs,
  ]
}
