package config

import (
	"strings"
	"testing"
)

func env(m map[string]string) Lookup {
	return func(name string) (string, bool) { v, ok := m[name]; return v, ok }
}

// TestFromEnvNamesTheVariable: every missing or malformed setting fails,
// all at once, each error naming its variable, and never echoing a target
// URL (they may hold passwords).
func TestFromEnvNamesTheVariable(t *testing.T) {
	_, err := FromEnv(env(map[string]string{
		EnvTopicSnapshots: "x",                                   // too short
		EnvReadsPerHost:   "0",                                   // out of range
		EnvConnections:    "two",                                 // not a number
		EnvTenantTimeout:  "-1s",                                 // not positive
		EnvTargets:        "postgres://u:S3cret@h/db?name=Bad!x", // bad name
		EnvProject:        "Not A Project",
	}), Need{Registry: true, Targets: true, Project: true})
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{EnvLake, EnvRegistry, EnvTopicSnapshots, EnvReadsPerHost, EnvConnections, EnvTenantTimeout, EnvTargets, EnvProject} {
		if !strings.Contains(err.Error(), name+":") {
			t.Errorf("the error does not name %s: %v", name, err)
		}
	}
	if strings.Contains(err.Error(), "S3cret") {
		t.Errorf("the error shows a password: %v", err)
	}
}

func TestFromEnvDefaultsAndTargets(t *testing.T) {
	c, err := FromEnv(env(map[string]string{
		EnvLake:    "mem://",
		EnvTargets: "postgres://h/db bigquery://proj?name=bq_eu\npostgres://h/other?name=archive",
	}), Need{Targets: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.TargetNames(), ","); got != "postgres,bq_eu,archive" {
		t.Errorf("target names %s", got)
	}
	if c.Topics.SnapshotsDeadLetter != "snapshots-dead-letter" || c.ReadsPerHost != 2 || c.Connections != 2 {
		t.Errorf("defaults: %+v", c)
	}
	for _, bad := range []string{"postgres://h/a postgres://h/b", "mysql://h/db", "not-a-url", "postgres://h/db?name=x-y"} {
		if _, err := ParseTargets(bad); err == nil {
			t.Errorf("ParseTargets(%q) accepted", bad)
		}
	}
	if _, err := FromEnv(env(map[string]string{EnvLake: "mem://", EnvTopicLoads: "snapshots"}), Need{}); err == nil || !strings.Contains(err.Error(), EnvTopicLoads) {
		t.Errorf("two topics of one name: %v", err)
	}
}
