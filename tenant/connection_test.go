package tenant

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:s3cret@h:5432/db?sslmode=disable": "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		"postgres://u@h/db?password=s3cret":             "postgres://u@h/db?password=xxxxx",
		"host=h user=u password=s3cret dbname=d":        "host=h user=u password=xxxxx dbname=d",
		"host=h password='s3 cret' dbname=d":            "host=h password=xxxxx dbname=d",
		"postgres://u@h/db":                             "postgres://u@h/db",
	} {
		got := Redact(in)
		if got != want || strings.Contains(got, "s3") {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResolveConnection(t *testing.T) {
	t.Setenv("TL_TEST_DSN", "postgres://a@b/c")
	secret := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(secret, []byte("postgres://x@y/z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{
		"env:TL_TEST_DSN":  "postgres://a@b/c",
		"file:" + secret:   "postgres://x@y/z",
		"postgres://d@e/f": "postgres://d@e/f",
	} {
		got, err := Tenant{ID: "acme", Connection: ref}.ResolveConnection()
		if err != nil || got != want {
			t.Errorf("ResolveConnection(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
	for _, ref := range []string{"", "env:TL_TEST_MISSING", "file:/nonexistent/dsn"} {
		if _, err := (Tenant{ID: "acme", Connection: ref}).ResolveConnection(); err == nil {
			t.Errorf("ResolveConnection(%q) succeeded, want an error", ref)
		}
	}
}
