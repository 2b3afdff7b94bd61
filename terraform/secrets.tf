# Secret Manager secrets. The module creates the secrets and their access
# grants, never their values: values are added with
#   gcloud secrets versions add SECRET --data-file=-
# so no connection string or password is ever in Terraform's state. Each
# secret is mounted as a file at its latest version: reading a mounted secret
# fetches it from Secret Manager, so a new version reaches running instances
# (see the README, "Rotating a secret").

# One per tenant: its PostgreSQL connection string, mounted into Read and
# the big-read job at /secrets/<tenant>/dsn.
resource "google_secret_manager_secret" "tenant" {
  for_each = var.tenants

  project   = var.project
  secret_id = "${var.name_prefix}-tenant-${each.key}-dsn"
  labels    = merge(local.labels, { tenant = each.key })

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

# The registry: a YAML document (kind yaml) or the .pgpass line of the
# registry database (kind postgres), mounted at /secrets/_registry.
resource "google_secret_manager_secret" "registry" {
  project   = var.project
  secret_id = local.registry_mount.registry.secret
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

# One per PostgreSQL target: the warehouse password as a .pgpass line
# (*:*:*:*:PASSWORD), mounted into that target's Load function only, at
# /secrets/_target/pgpass.
resource "google_secret_manager_secret" "target" {
  for_each = local.target_secrets

  project   = var.project
  secret_id = each.value
  labels    = merge(local.labels, { target = each.key })

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_iam_member" "reader_tenant" {
  for_each = google_secret_manager_secret.tenant

  project   = var.project
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.reader.email}"
}

resource "google_secret_manager_secret_iam_member" "big_read_tenant" {
  for_each = google_secret_manager_secret.tenant

  project   = var.project
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.big_read.email}"
}

resource "google_secret_manager_secret_iam_member" "scheduler_registry" {
  project   = var.project
  secret_id = google_secret_manager_secret.registry.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.scheduler.email}"
}

resource "google_secret_manager_secret_iam_member" "reader_registry" {
  project   = var.project
  secret_id = google_secret_manager_secret.registry.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.reader.email}"
}

resource "google_secret_manager_secret_iam_member" "big_read_registry" {
  project   = var.project
  secret_id = google_secret_manager_secret.registry.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.big_read.email}"
}

resource "google_secret_manager_secret_iam_member" "loader_target" {
  for_each = google_secret_manager_secret.target

  project   = var.project
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.loader[each.key].email}"
}
