package tenant

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Hostile passwords are made of two halves, so that a half leaked by a
// parser that split the password is caught too.
const (
	pwHead = "S3cret"
	pwTail = "Tail9x"
)

// leaks reports which half of the hostile password s holds.
func leaks(s string) []string {
	var got []string
	for _, h := range []string{pwHead, pwTail, "Sh4dowHash"} {
		if strings.Contains(s, h) {
			got = append(got, h)
		}
	}
	return got
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		// Well-formed.
		"postgres://u:s3cret@h:5432/db?sslmode=disable":  "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		"postgres://u@h/db?password=s3cret":              "postgres://u@h/db?password=xxxxx",
		"postgres://u@h/db?sslmode=require&password=s3x": "postgres://u@h/db?sslmode=require&password=xxxxx",
		"postgres://u@h/db?sslpassword=s3x&a=b":          "postgres://u@h/db?sslpassword=xxxxx&a=b",
		"postgres://u:s3cret@/db":                        "postgres://u:xxxxx@/db",
		"postgres://u:s3cret@h1:5432,h2:5433/db":         "postgres://u:xxxxx@h1:5432,h2:5433/db",
		"postgres://u:s3cret@[::1]:5432/db":              "postgres://u:xxxxx@[::1]:5432/db",
		"postgres://h:5432/db?application_name=a@b":      "postgres://h:5432/db?application_name=a@b",
		"host=h user=u password=s3cret dbname=d":         "host=h user=u password=xxxxx dbname=d",
		"host=h password='s3 cret' dbname=d":             "host=h password=xxxxx dbname=d",
		"host=h PASSWORD = s3cret":                       "host=h PASSWORD = xxxxx",
		"postgres://u@h/db":                              "postgres://u@h/db",
		"env:ACME_DSN":                                   "env:ACME_DSN",
		"file:/run/secrets/acme":                         "file:/run/secrets/acme",
		// Malformed: hidden all the same.
		"postgres://app:" + pwHead + pwTail + "@127.0.0.1:notaport/db":    "postgres://app:xxxxx@127.0.0.1:notaport/db",
		"postgres://app:" + pwHead + "%zz" + pwTail + "@127.0.0.1/db":     "postgres://app:xxxxx@127.0.0.1/db",
		"postgres://app:" + pwHead + pwTail + "@127.0.0.1/db%zz":          "postgres://app:xxxxx@127.0.0.1/db%zz",
		"postgres://app:" + pwHead + pwTail + "@[::1/db":                  "postgres://app:xxxxx@[::1/db",
		"postgres://app:" + pwHead + "/" + pwTail + "@127.0.0.1:5432/db":  "postgres://app:xxxxx@127.0.0.1:5432/db",
		"postgres://app:" + pwHead + "@" + pwTail + "@127.0.0.1/db":       "postgres://app:xxxxx@127.0.0.1/db",
		"postgres://app:" + pwHead + "?" + pwTail + "@127.0.0.1/db":       "postgres://app:xxxxx@127.0.0.1/db",
		"postgres://app:" + pwHead + "#" + pwTail + "@127.0.0.1/db":       "postgres://app:xxxxx@127.0.0.1/db",
		"postgres://app:12/" + pwTail + "@127.0.0.1/db":                   "postgres://app:xxxxx@127.0.0.1/db",
		"postgres://app@127.0.0.1/db?password=" + pwHead + "%zz&a=b":      "postgres://app@127.0.0.1/db?password=xxxxx&a=b",
		"postgres://app@127.0.0.1:x/db?password=" + pwHead + "&" + pwTail: "postgres://app@127.0.0.1:x/db?password=xxxxx",
		"postgresql://app:" + pwHead + pwTail + "@h/db?sslmode=bogus":     "postgresql://app:xxxxx@h/db?sslmode=bogus",
		"gs://app:" + pwHead + pwTail + "@bucket:x/lake":                  "gs://app:xxxxx@bucket:x/lake",
		"host=h port=notaport password=" + pwHead + pwTail:                "host=h port=notaport password=xxxxx",
		"host=h password='" + pwHead + " " + pwTail:                       "host=h password=xxxxx",
		"host=h password='" + pwHead + "\\":                               "host=h password=xxxxx",
		"host=h password=" + pwHead + " " + pwTail:                        "host=h password=xxxxx",
		"host=h password=" + pwHead + " " + pwTail + " port=5":            "host=h password=xxxxx port=5",
		"host=h sslpassword=" + pwHead + pwTail:                           "host=h sslpassword=xxxxx",
		"app:" + pwHead + pwTail + "@127.0.0.1/db":                        "app:xxxxx@127.0.0.1/db",
	} {
		got := Redact(in)
		if got != want || len(leaks(got)) > 0 || strings.Contains(got, "s3") {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// hostileConns are connection strings that pgx cannot parse or reads in a
// way that puts a part of the password elsewhere, each with what its error
// must say.
var hostileConns = map[string]string{
	"postgres://app:" + pwHead + pwTail + "@127.0.0.1:notaport/db":   "invalid port",
	"postgres://app:" + pwHead + "%zz" + pwTail + "@127.0.0.1/db":    "percent-encoded",
	"postgres://app:" + pwHead + pwTail + "@[::1/db":                 `"]"`,
	"postgres://app:" + pwHead + "/" + pwTail + "@127.0.0.1:5432/db": "invalid port",
	"postgres://app:" + pwHead + "@" + pwTail + "@127.0.0.1/db":      "ambiguous",
	"postgres://app:12/" + pwTail + "@127.0.0.1/db":                  "ambiguous",
	"postgres://app:12?" + pwTail + "@127.0.0.1/db":                  "ambiguous",
	"postgres://app:12#" + pwTail + "@127.0.0.1/db":                  "ambiguous",
	"postgres://app:" + pwHead + "@h/db?password=" + pwTail:          "ambiguous",
	"postgres://app@h/db?password=" + pwHead + "%zz&" + pwTail:       "percent-encoded",
	"postgres://app@h/db?password=" + pwHead + "&" + pwTail:          `separator "="`,
	"postgresql://app:" + pwHead + pwTail + "@h/db?sslmode=bogus":    "sslmode is invalid",
	"host=h port=notaport password=" + pwHead + pwTail:               "invalid port",
	"host=h password='" + pwHead + " " + pwTail:                      "unterminated quoted string",
	"host=h password=" + pwHead + " " + pwTail:                       "invalid keyword/value",
	"host=h password=" + pwHead + " " + pwTail + " port=5":           `missing "="`,
	"app:" + pwHead + pwTail + "@127.0.0.1/db":                       "invalid keyword/value",
}

func TestParseConfigHidesPasswords(t *testing.T) {
	for conn, reason := range hostileConns {
		_, err := ParseConfig(conn)
		if err == nil {
			t.Errorf("ParseConfig(%q) succeeded, want an error", conn)
			continue
		}
		if !errors.Is(err, ErrBadConnString) || !strings.Contains(err.Error(), reason) {
			t.Errorf("ParseConfig(%q) = %v, want ErrBadConnString saying %q", conn, err, reason)
		}
		if l := leaks(err.Error()); len(l) > 0 || strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("ParseConfig(%q): error %q holds a part of the string: %v", conn, err, l)
		}
	}
	for _, good := range []string{
		"postgres://app:" + pwHead + "%40" + pwTail + "@127.0.0.1:5432/db?sslmode=disable",
		"postgres://app:pw@h1:5432,h2:5433/db",
		"host=h port=5432 user=app password='" + pwHead + " " + pwTail + "' dbname=d",
		"postgres://h:5432/db?application_name=a@b",
	} {
		cfg, err := ParseConfig(good)
		if err != nil {
			t.Errorf("ParseConfig(%q) = %v", good, err)
			continue
		}
		if strings.Contains(good, pwHead) && cfg.Password != pwHead+"@"+pwTail && cfg.Password != pwHead+" "+pwTail {
			t.Errorf("ParseConfig(%q): password %q", good, cfg.Password)
		}
	}
}

func TestParseURLHidesPasswords(t *testing.T) {
	for raw, reason := range map[string]string{
		"postgres://app:" + pwHead + pwTail + "@127.0.0.1:notaport/db": "invalid port after the host",
		"postgres://app:" + pwHead + "%zz" + pwTail + "@127.0.0.1/db":  "invalid %-escape",
		"bigquery://app:" + pwHead + pwTail + "@[::1/db":               "missing ']' in host",
		"gs://app:" + pwHead + pwTail + "@bu cket/x":                   "invalid character in the host",
		"postgres://app:" + pwHead + "\x7f" + pwTail + "@h/db":         "invalid control character",
		"bigquery://app:12?" + pwTail + "@h/db":                        "ambiguous",
		"gs://app:12/" + pwTail + "@bucket/x":                          "ambiguous",
	} {
		_, err := ParseURL(raw)
		if !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), reason) {
			t.Errorf("ParseURL(%q) = %v, want ErrBadURL saying %q", raw, err, reason)
		}
		if err != nil && len(leaks(err.Error())) > 0 {
			t.Errorf("ParseURL(%q): error %q holds the password", raw, err)
		}
	}
	if u, err := ParseURL("postgres://u:pw@h/db?x=1"); err != nil || u.Host != "h" {
		t.Errorf("ParseURL of a good URL = %v, %v", u, err)
	}
}

func TestResolveConnection(t *testing.T) {
	t.Setenv("TL_TEST_DSN", "postgres://a@b/c")
	t.Setenv("TL_TEST_EMPTY", " ")
	dir := t.TempDir()
	secret := filepath.Join(dir, "dsn")
	if err := os.WriteFile(secret, []byte("postgres://x@y/z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
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
	for ref, want := range map[string]string{
		"":                      "no connection",
		"env:TL_TEST_MISSING":   "env:TL_TEST_MISSING: environment variable TL_TEST_MISSING is not set",
		"env:TL_TEST_EMPTY":     "is not set",
		"file:/nonexistent/dsn": "file:/nonexistent/dsn: read secret file",
		"file:" + empty:         "file:" + empty + ": the file is empty",
	} {
		_, err := (Tenant{ID: "acme", Connection: ref}).ResolveConnection()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ResolveConnection(%q) = %v, want an error saying %q", ref, err, want)
		}
	}
}

// TestConnConfigNeverShowsSecrets: a file: or env: reference whose content
// is not a connection string (here a shadow file's line) fails naming the
// reference, never echoing the content; a direct string is named redacted.
func TestConnConfigNeverShowsSecrets(t *testing.T) {
	shadow := "root:$6$Sh4dowHash$" + pwHead + ":19000:0:99999:7:::\nbin:*:19000:0:99999:7:::\n"
	path := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(path, []byte(shadow), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TL_TEST_SHADOW", shadow)
	bad := "postgres://app:" + pwHead + pwTail + "@127.0.0.1:notaport/db"
	t.Setenv("TL_TEST_BAD", bad)
	for ref, want := range map[string]string{
		"file:" + path:       "connection file:" + path + ": the file's content is not a valid PostgreSQL connection string: failed to parse as keyword/value",
		"env:TL_TEST_SHADOW": "connection env:TL_TEST_SHADOW: the variable's value is not a valid PostgreSQL connection string",
		"env:TL_TEST_BAD":    "connection env:TL_TEST_BAD: the variable's value is not a valid PostgreSQL connection string: invalid port",
		bad:                  "connection postgres://app:xxxxx@127.0.0.1:notaport/db: is not a valid PostgreSQL connection string: invalid port",
	} {
		_, err := Tenant{ID: "acme", Connection: ref}.ConnConfig()
		if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, ErrBadConnString) {
			t.Errorf("ConnConfig(%q) = %v, want an error starting %q", ref, err, want)
		}
		if err != nil && (len(leaks(err.Error())) > 0 || strings.Contains(err.Error(), "root")) {
			t.Errorf("ConnConfig(%q): error %q shows secret material", ref, err)
		}
	}
	cfg, err := Tenant{ID: "acme", Connection: "postgres://app:pw@db.internal:5433/tl_acme"}.ConnConfig()
	if err != nil || cfg.Host != "db.internal" || cfg.Port != 5433 || cfg.Password != "pw" || cfg.Database != "tl_acme" {
		t.Errorf("ConnConfig of a good string = %+v, %v", cfg, err)
	}
}
