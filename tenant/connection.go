package tenant

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ResolveConnection returns the tenant's PostgreSQL connection string:
//
//   - "env:NAME": the value of environment variable NAME;
//   - "file:/path": the contents of the file, trimmed (how Cloud Functions
//     and Cloud Run mount Secret Manager secrets);
//   - anything else: the connection string itself (development).
//
// An unset or empty variable and a missing or empty file are errors, which
// name the reference (callers name the tenant). The result may hold a
// password: never log it; log Redact(result) instead, and for env: and
// file: references log the reference, never the result.
func (t Tenant) ResolveConnection() (string, error) {
	ref := t.Connection
	switch {
	case ref == "":
		return "", errors.New("no connection in the registry")
	case strings.HasPrefix(ref, "env:"):
		name := strings.TrimPrefix(ref, "env:")
		v, ok := os.LookupEnv(name)
		if !ok || strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("connection %s: environment variable %s is not set", ref, name)
		}
		return v, nil
	case strings.HasPrefix(ref, "file:"):
		path := strings.TrimPrefix(ref, "file:")
		b, err := os.ReadFile(path)
		if err != nil {
			// An *fs.PathError names the path and the system's reason only.
			return "", fmt.Errorf("connection %s: read secret file: %w", ref, err)
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", fmt.Errorf("connection %s: the file is empty", ref)
		}
		return v, nil
	}
	return ref, nil
}

// ConnConfig resolves the tenant's connection (ResolveConnection) and parses
// it as a PostgreSQL connection string (ParseConfig). Its errors name the
// reference (callers name the tenant): a connection string given directly
// appears Redact'ed; for env: and file: references only the reference
// appears, never the secret it holds, e.g.
//
//	connection file:/run/secrets/acme: the file's content is not a valid PostgreSQL connection string: failed to parse as keyword/value (invalid keyword/value)
func (t Tenant) ConnConfig() (*pgx.ConnConfig, error) {
	conn, err := t.ResolveConnection()
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(conn)
	switch {
	case err == nil:
		return cfg, nil
	case strings.HasPrefix(t.Connection, "env:"):
		return nil, fmt.Errorf("connection %s: the variable's value %w", t.Connection, err)
	case strings.HasPrefix(t.Connection, "file:"):
		return nil, fmt.Errorf("connection %s: the file's content %w", t.Connection, err)
	}
	return nil, fmt.Errorf("connection %s: %w", Redact(conn), err)
}

// ErrBadConnString is wrapped by the errors of ParseConfig (and of
// ConnConfig when the connection string does not parse).
var ErrBadConnString = errors.New("is not a valid PostgreSQL connection string")

// ParseConfig parses a PostgreSQL connection string (a postgres:// URL or
// key=value pairs) with pgx.ParseConfig. Unlike pgx's, its error holds no
// part of conn, so it is safe to log whatever conn holds: it wraps
// ErrBadConnString and says why, e.g. "is not a valid PostgreSQL connection
// string: invalid port". A URL whose password pgx, url.Parse and Redact
// do not all read alike (an unescaped '/', '?', '#' or '@' in it) is
// refused, so that no part of the password ends up in the host, database
// or options that connection errors show. Callers name the string with
// Redact(conn).
func ParseConfig(conn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(conn)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrBadConnString, scrub(parseReason(err), conn))
	}
	// A URL whose password holds an unescaped '@', '/', '?' or '#' can
	// parse, with a part of the password read as the host, port, database
	// or query (by pgx, or by url.Parse where a target's options are read),
	// which connection errors then show. Such a URL is refused.
	if pw := urlPassword(conn); pw != "" {
		dec, err := url.PathUnescape(pw)
		ambiguous := err != nil || dec != cfg.Password
		if u, err := url.Parse(conn); err == nil {
			netPW, _ := u.User.Password()
			ambiguous = ambiguous || netPW != cfg.Password
		}
		if ambiguous {
			return nil, fmt.Errorf("%w: %s", ErrBadConnString, ambiguousPassword)
		}
	}
	return cfg, nil
}

// ErrBadURL is wrapped by the errors of ParseURL.
var ErrBadURL = errors.New("is not a valid URL")

// ParseURL parses a URL that may carry a password (a registry, a target) with
// url.Parse. Unlike url.Parse's, its error holds no part of raw: it wraps
// ErrBadURL and says why, e.g. "is not a valid URL: invalid port after
// the host". A URL that parses with a part of what Redact takes for its
// password read as the host, path or query (an unescaped '/', '?', '#' or
// '@' in the password) is refused too. Callers name the URL with
// Redact(raw).
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		reason := "malformed"
		var ue *url.Error
		if errors.As(err, &ue) {
			reason = urlReason(ue.Err)
		}
		return nil, fmt.Errorf("%w: %s", ErrBadURL, scrub(reason, raw))
	}
	if pw := urlPassword(raw); pw != "" {
		dec, err := url.PathUnescape(pw)
		if netPW, _ := u.User.Password(); err != nil || dec != netPW {
			return nil, fmt.Errorf("%w: %s", ErrBadURL, ambiguousPassword)
		}
	}
	return u, nil
}

const ambiguousPassword = "its password is ambiguous (given twice, or holding an unescaped '@', '/', '?' or '#': write those %-escaped, %40, %2F, %3F, %23)"

// urlPassword returns the password that Redact hides in the userinfo of the
// URL conn, as written; "" if conn is not a URL or has none.
func urlPassword(conn string) string {
	rest := strings.TrimPrefix(conn, urlHead(conn))
	if rest == conn {
		return ""
	}
	ui, _, ok := urlUserinfo(rest, urlReadAlike(conn, rest))
	if !ok {
		return ""
	}
	_, pw, _ := strings.Cut(ui, ":")
	return pw
}

// urlReason describes an error of url.Parse without the values it quotes.
func urlReason(err error) string {
	var esc url.EscapeError
	var host url.InvalidHostError
	switch {
	case errors.As(err, &esc):
		return "invalid %-escape (a literal % is written %25)"
	case errors.As(err, &host):
		return "invalid character in the host"
	case strings.HasPrefix(err.Error(), "invalid port"):
		return "invalid port after the host"
	}
	return unquote(err.Error())
}

// parseReason describes an error of pgx.ParseConfig without the connection
// string, which pgx quotes with only a best-effort redaction.
func parseReason(err error) string {
	var pe *pgconn.ParseConfigError
	if !errors.As(err, &pe) {
		return "malformed"
	}
	cp := *pe
	cp.ConnString = ""
	msg := strings.TrimPrefix(cp.Error(), "cannot parse ``: ")
	inner := errors.Unwrap(pe)
	if inner == nil {
		return unquote(msg)
	}
	msg = strings.TrimSuffix(msg, " ("+inner.Error()+")")
	var ue *url.Error
	if errors.As(inner, &ue) {
		return unquote(msg) + " (" + urlReason(ue.Err) + ")"
	}
	return unquote(msg) + " (" + unquote(inner.Error()) + ")"
}

// quoted matches a piece an error message quotes, "…" or `…`.
var quoted = regexp.MustCompile("\"[^\"]*(\"|$)|`[^`]*(`|$)")

// unquote replaces the pieces an error message quotes from its input with
// "…": they may be a part of a password that no parser recognized as one.
// A single quoted character, like "=", is kept.
func unquote(msg string) string {
	return quoted.ReplaceAllStringFunc(msg, func(q string) string {
		if len(q) <= 3 {
			return q
		}
		return `"…"`
	})
}

// scrub removes from msg every secret that Redact finds in conn.
func scrub(msg, conn string) string {
	_, secrets := redact(conn)
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}

// Redact returns a connection string with any password replaced by "xxxxx",
// for logs, errors and output. It works on strings that do not parse too,
// and errs on the side of hiding more:
//
//   - in a URL (anything holding "://"), the userinfo's password. For a URL
//     that url.Parse and pgx read alike, that is what they call the
//     password; otherwise everything from the first ':' after "//" up to
//     the last '@' of the string, so a password holding '@', '/', '?',
//     '#' or a bad %-escape is hidden whole;
//   - in a URL's query, the values of password and sslpassword (to the end
//     of the string when the URL does not parse);
//   - in key=value strings, the value of every key ending in "password",
//     quoted or not, to the end of the string when its quote is not
//     closed, and the password of a "user:password@host" word.
func Redact(conn string) string {
	s, _ := redact(conn)
	return s
}

const mask = "xxxxx"

var (
	// kvPassword: a key=value password; an unterminated quote runs to the end.
	// An unquoted value takes the words after it that hold no '=' (an
	// unquoted password with spaces).
	kvPassword = regexp.MustCompile(`(?is)(password\s*=\s*)('(?:[^'\\]|\\.)*'|'.*|\S+(?:\s+[^\s=]+)*)(?:\s|$)`)
	// queryPassword: a password in a URL query that parses.
	queryPassword = regexp.MustCompile(`(?i)((?:^|&)(?:ssl)?password=)([^&]*)`)
	// brokenQueryPassword: a password in the query of a URL that does not
	// parse: its end is not known, so everything after it goes.
	brokenQueryPassword = regexp.MustCompile(`(?is)(password\s*=\s*)(.+)`)
	// userinfoWord: a "user:password@host" word outside a URL.
	userinfoWord = regexp.MustCompile(`([^\s:@]*:)(\S*)@`)
)

// redact returns Redact(conn) and the secrets it hid.
func redact(conn string) (string, []string) {
	var secrets []string
	// hide masks group 2 of every match of re; group 1 is kept, and so is
	// what the match holds after group 2.
	hide := func(re *regexp.Regexp, s string) string {
		var b strings.Builder
		last := 0
		for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
			secrets = append(secrets, s[m[4]:m[5]])
			b.WriteString(s[last:m[4]])
			b.WriteString(mask)
			last = m[5]
		}
		b.WriteString(s[last:])
		return b.String()
	}
	// userinfo masks the password of a userinfo "user:password".
	userinfo := func(ui string) string {
		user, pw, ok := strings.Cut(ui, ":")
		if !ok {
			return ui
		}
		secrets = append(secrets, pw)
		return user + ":" + mask
	}
	rest, ok := strings.CutPrefix(conn, urlHead(conn))
	if !ok || rest == conn {
		return hide(userinfoWord, hide(kvPassword, conn)), secrets
	}
	head := conn[:len(conn)-len(rest)]
	alike := urlReadAlike(conn, rest)
	if ui, after, ok := urlUserinfo(rest, alike); ok {
		rest = userinfo(ui) + after
	}
	if !alike {
		return head + hide(brokenQueryPassword, rest), secrets
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		rest = rest[:q+1] + hide(queryPassword, rest[q+1:])
	}
	return head + rest, secrets
}

// urlHead returns the part of a URL up to and including its "://", or ""
// when conn holds no "://".
func urlHead(conn string) string {
	i := strings.Index(conn, "://")
	if i < 0 {
		return ""
	}
	return conn[:i+3]
}

// urlUserinfo splits rest, a URL after its "://", into the userinfo and
// what follows it from its '@' on. When url.Parse and pgx read the URL
// alike, the userinfo is what they read; otherwise it runs to the last '@'.
func urlUserinfo(rest string, alike bool) (userinfo, after string, ok bool) {
	at := strings.LastIndexByte(rest, '@')
	if alike {
		at = strings.IndexAny(rest, "@/")
	}
	if at < 0 || rest[at] != '@' {
		return "", rest, false
	}
	return rest[:at], rest[at:], true
}

// urlReadAlike reports whether url.Parse reads the URL conn (rest: what
// follows its "://") and pgx (like libpq, a userinfo ends at the first '@'
// before any '/') see the same userinfo, and no other '@' comes before the
// query: then the password is where both look for it.
func urlReadAlike(conn, rest string) bool {
	u, err := url.Parse(conn)
	if err != nil || strings.Contains(rest, "#") {
		return false
	}
	at := strings.IndexAny(rest, "@/")
	pgxUser := at >= 0 && rest[at] == '@'
	if pgxUser != (u.User != nil) {
		return false
	}
	beforeQuery, _, _ := strings.Cut(rest, "?")
	n := strings.Count(beforeQuery, "@")
	return n == 0 || n == 1 && pgxUser
}
