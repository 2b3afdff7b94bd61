package config

import (
	"strings"
	"testing"
)

func lookup(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// TestBigRead: the big-tenant threshold and the job's name are parsed and
// checked, each problem naming its variable.
func TestBigRead(t *testing.T) {
	const job = "projects/p1/locations/europe-west1/jobs/tenantlake-big-read"
	c, err := FromEnv(lookup(map[string]string{EnvLake: "mem://", EnvBigTenantBytes: "10737418240", EnvBigReadJob: job}), Need{})
	if err != nil || c.BigTenantBytes != 10<<30 || c.BigReadJob != job {
		t.Fatalf("got %d %q, %v", c.BigTenantBytes, c.BigReadJob, err)
	}
	c, err = FromEnv(lookup(map[string]string{EnvLake: "mem://"}), Need{})
	if err != nil || c.BigTenantBytes != 0 || c.BigReadJob != "" {
		t.Fatalf("defaults: got %d %q, %v", c.BigTenantBytes, c.BigReadJob, err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{EnvBigTenantBytes: "-1", EnvBigReadJob: job}, EnvBigTenantBytes + `: "-1"`},
		{map[string]string{EnvBigTenantBytes: "10GB", EnvBigReadJob: job}, EnvBigTenantBytes + `: "10GB"`},
		{map[string]string{EnvBigTenantBytes: "100"}, EnvBigReadJob + ": not set"},
		{map[string]string{EnvBigReadJob: "tenantlake-big-read"}, EnvBigReadJob + `: "tenantlake-big-read" is not a Cloud Run job name`},
		{map[string]string{EnvBigReadJob: job + "/executions/x"}, EnvBigReadJob + ":"},
	} {
		tc.env[EnvLake] = "mem://"
		_, err := FromEnv(lookup(tc.env), Need{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one containing %q", tc.env, err, tc.want)
		}
	}
}
