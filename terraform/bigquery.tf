# BigQuery datasets of each bigquery target: staging (its tables expire by
# themselves), the ledger (the live record and one row per load) and the
# all-tenants views. Tenant datasets (tenant_<id>) are created by the
# loader on a tenant's first load: see iam.tf for the grant that allows it.

resource "google_bigquery_dataset" "staging" {
  for_each = local.bigquery_targets

  project                     = each.value.project
  dataset_id                  = each.value.staging_dataset
  location                    = each.value.location
  description                 = "tenantlake staging tables of target ${each.key}: loaded, validated, then promoted; they expire by themselves"
  default_table_expiration_ms = each.value.staging_expiration_days * 86400000
  delete_contents_on_destroy  = false
  labels                      = merge(local.labels, { target = each.key })

  depends_on = [google_project_service.apis]
}

resource "google_bigquery_dataset" "ledger" {
  for_each = local.bigquery_targets

  project                    = each.value.project
  dataset_id                 = each.value.ledger_dataset
  location                   = each.value.location
  description                = "tenantlake ledger of target ${each.key}: the live snapshot of every tenant and one row per load"
  delete_contents_on_destroy = false
  labels                     = merge(local.labels, { target = each.key })

  depends_on = [google_project_service.apis]
}

resource "google_bigquery_dataset" "all_tenants" {
  for_each = local.bigquery_targets

  project                    = each.value.project
  dataset_id                 = each.value.all_tenants_dataset
  location                   = each.value.location
  description                = "tenantlake all-tenants views of target ${each.key}: every tenant's table with a tenant_id column"
  delete_contents_on_destroy = false
  labels                     = merge(local.labels, { target = each.key })

  depends_on = [google_project_service.apis]
}
