# The lake bucket and the bucket of function source archives.
#
# Retention of the lake is `tenantlake gc` (whole snapshots, manifest first,
# the newest snapshot of a tenant always kept). The bucket has no age-based
# Delete rule on purpose: one would delete parts under a live manifest and a
# tenant's only snapshot. What the bucket itself keeps:
#   - soft delete for lake_soft_delete_days (default 7): anything gc or a
#     person deletes can be restored for that long;
#   - versioning off: every object is written once (if-not-exists), so
#     there are no versions to keep;
#   - a rule that aborts multipart uploads left incomplete for a day, and,
#     when lake_nearline_after_days is set, a class change to NEARLINE.

resource "google_storage_bucket" "lake" {
  project  = var.project
  name     = local.lake_bucket
  location = var.lake_location != "" ? var.lake_location : var.region
  labels   = local.labels

  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = false
  }

  soft_delete_policy {
    retention_duration_seconds = var.lake_soft_delete_days * 86400
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  dynamic "lifecycle_rule" {
    for_each = var.lake_nearline_after_days > 0 ? [var.lake_nearline_after_days] : []
    content {
      condition {
        age                   = lifecycle_rule.value
        matches_storage_class = ["STANDARD"]
      }
      action {
        type          = "SetStorageClass"
        storage_class = "NEARLINE"
      }
    }
  }

  depends_on = [google_project_service.apis]
}

# Function source archives (`make package`), read by the functions' builds.
resource "google_storage_bucket" "sources" {
  project  = var.project
  name     = local.names.sources
  location = var.region
  labels   = local.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  versioning {
    enabled = false
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket_object" "source" {
  bucket = google_storage_bucket.sources.name
  name   = "tenantlake-functions-${filemd5(var.source_archive)}.zip"
  source = var.source_archive
}
