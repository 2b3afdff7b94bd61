package lake_test

import (
	"testing"

	"github.com/tenantlake/tenantlake/lake/laketest"
)

func TestConformanceFile(t *testing.T) { laketest.Run(t, laketest.File) }
func TestConformanceMem(t *testing.T)  { laketest.Run(t, laketest.Mem) }
func TestConformanceGCS(t *testing.T)  { laketest.Run(t, laketest.GCS) }
