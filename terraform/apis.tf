# The APIs the deployment uses, enabled unless enable_apis is false. They are
# left enabled on destroy: other workloads of the project may use them.

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? toset([
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "iam.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ]) : toset([])

  project            = var.project
  service            = each.value
  disable_on_destroy = false
}
