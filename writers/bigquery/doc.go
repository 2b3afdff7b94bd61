// Package bigquery is the BigQuery write strategy.
package bigquery
