// Package smoke holds the check of the BigQuery writer against a real
// BigQuery project and GCS bucket (smoke_test.go, build tag
// bigquerysmoke), run by scripts/bigquery-smoke.sh PROJECT BUCKET; it is
// never part of make test and has not been run from the machines
// tenantlake is developed on, which reach no Google service.
package smoke
