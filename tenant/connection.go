package tenant

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
)

// ResolveConnection returns the tenant's PostgreSQL connection string:
//
//   - "env:NAME": the value of environment variable NAME;
//   - "file:/path": the contents of the file, trimmed (how Cloud Functions
//     and Cloud Run mount Secret Manager secrets);
//   - anything else: the connection string itself (development).
//
// The result may hold a password: never log it; log Redact(result) instead.
func (t Tenant) ResolveConnection() (string, error) {
	ref := t.Connection
	switch {
	case ref == "":
		return "", fmt.Errorf("tenant %s: no connection in the registry", t.ID)
	case strings.HasPrefix(ref, "env:"):
		name := strings.TrimPrefix(ref, "env:")
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return "", fmt.Errorf("tenant %s: connection: environment variable %s is not set", t.ID, name)
		}
		return v, nil
	case strings.HasPrefix(ref, "file:"):
		path := strings.TrimPrefix(ref, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("tenant %s: connection: read secret file: %w", t.ID, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return ref, nil
}

var kvPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)

// Redact returns a connection string with any password replaced by "xxxxx",
// for logs and errors. It handles URLs and key=value strings.
func Redact(conn string) string {
	if u, err := url.Parse(conn); err == nil && u.Scheme != "" && u.Host != "" {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return kvPassword.ReplaceAllString(conn, "${1}xxxxx")
}
