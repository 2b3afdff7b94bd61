package postgres

import (
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// maxName is the longest destination name: PostgreSQL's identifier limit
// (63 bytes) is stricter than BigQuery's (300 for columns, 1024 for tables).
const maxName = 63

// bigQueryReserved are column name prefixes BigQuery rejects (compared
// without case).
var bigQueryReserved = []string{"_table_", "_file_", "_partition", "_row_timestamp", "__root__", "_colidentifier"}

// destName maps a source name to a destination name valid in BigQuery and
// PostgreSQL: lower-case ASCII letters, digits and '_', not starting with a
// digit, not a BigQuery reserved prefix, at most maxName bytes. Every other
// byte becomes '_'. The mapping is deterministic; uniqueness is the job of
// uniqueNames.
func destName(src string) string {
	var b strings.Builder
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_':
			b.WriteByte(c)
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		case c >= 0x80:
			// One '_' per UTF-8 sequence, not per byte.
			if c >= 0xc0 {
				b.WriteByte('_')
			}
		default:
			b.WriteByte('_')
		}
	}
	name := b.String()
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		name = "_" + name
	}
	for _, p := range bigQueryReserved {
		if strings.HasPrefix(name, p) {
			name = "x" + name
			break
		}
	}
	if len(name) > maxName {
		name = name[:maxName]
	}
	return name
}

// uniqueNames maps each of srcs (in the given, deterministic order) with
// destName and resolves collisions: the first keeps its name, later ones get
// the smallest suffix "_2", "_3", ... that is still free (the base shortened
// to keep within maxName). Names are compared as they are, which is enough
// since destName yields lower case only.
func uniqueNames(srcs []string) []string { return uniqueNamesAvoiding(srcs, nil) }

// uniqueNamesAvoiding is uniqueNames with the names in reserved taken
// already: a base name that is reserved gets a suffix too.
func uniqueNamesAvoiding(srcs []string, reserved map[string]bool) []string {
	out := make([]string, len(srcs))
	taken := make(map[string]bool, len(srcs)+len(reserved))
	for n := range reserved {
		taken[n] = true
	}
	bases := make([]string, len(srcs))
	for i, s := range srcs {
		bases[i] = destName(s)
	}
	// Names that map without collision keep their mapping even when an
	// earlier collision's suffix would have produced them.
	count := map[string]int{}
	for _, b := range bases {
		count[b]++
	}
	for i, b := range bases {
		if count[b] == 1 && !taken[b] {
			out[i] = b
			taken[b] = true
		}
	}
	for i, b := range bases {
		if out[i] != "" {
			continue
		}
		if !taken[b] {
			out[i] = b
			taken[b] = true
			continue
		}
		for n := 2; ; n++ {
			suffix := "_" + strconv.Itoa(n)
			cand := b
			if len(cand)+len(suffix) > maxName {
				cand = cand[:maxName-len(suffix)]
			}
			cand += suffix
			if !taken[cand] {
				out[i] = cand
				taken[cand] = true
				break
			}
		}
	}
	return out
}

// stableNames names items that keep their names across snapshots: item i
// is keys[i] (its source name as the manifest records it) and is named from
// srcs[i] by uniqueNames' rules, except that an item prev names (key →
// destination name of the previous snapshot) keeps that name, and no other
// item gets a name prev used: a name a source held in the previous snapshot
// never passes to a different source in the next. Without prev it is
// uniqueNames(srcs).
func stableNames(keys, srcs []string, prev map[string]string) []string {
	out := make([]string, len(keys))
	reserved := make(map[string]bool, len(prev))
	for _, n := range prev {
		reserved[n] = true
	}
	var rest []int
	var restSrcs []string
	for i, k := range keys {
		if n, ok := prev[k]; ok {
			out[i] = n
			continue
		}
		rest = append(rest, i)
		restSrcs = append(restSrcs, srcs[i])
	}
	for j, n := range uniqueNamesAvoiding(restSrcs, reserved) {
		out[rest[j]] = n
	}
	return out
}

// quoteIdent quotes one SQL identifier.
func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

// displayIdent quotes an identifier for messages only where it needs it:
// names of lower-case letters, digits, '_' and '$' not starting with a digit
// stay bare.
func displayIdent(s string) string {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c == '_' || i > 0 && (c >= '0' && c <= '9' || c == '$')) {
			return quoteIdent(s)
		}
	}
	if s == "" {
		return quoteIdent(s)
	}
	return s
}
