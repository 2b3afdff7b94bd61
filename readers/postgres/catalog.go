package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"
	"github.com/tenantlake/tenantlake/lake"
)

// table is one source table being read.
type table struct {
	oid     uint32
	schema  string
	relname string
	relkind byte
	name    string
	cols    []column
	key     []int // indexes in cols of the primary key, in key order
	useCtid bool  // no primary key: the ctid is fetched to name bad rows (not for views)
	pschema *parquet.Schema
	ranges  []readRange

	mu       sync.Mutex // guards the fields below, filled in by the workers
	nextPart int
	files    []lake.File
	rows     int64
	profiles []profile
}

// source is the table's name as PostgreSQL spells it, quoted where needed,
// e.g. public."Order Items"; for messages and the manifest.
func (t *table) source() string { return displayIdent(t.schema) + "." + displayIdent(t.relname) }

// sql is the table's name for SQL.
func (t *table) sql() string { return pgx.Identifier{t.schema, t.relname}.Sanitize() }

// readRange is one range of a table read by one worker into its own parts:
// the relation schema.name (ONLY it, when only is set), restricted to the
// ctid blocks [lo, hi) where lo > 0 or hi >= 0 (-1: open above).
type readRange struct {
	schema, name string
	only         bool
	lo, hi       int64
	size         int64 // estimated bytes, for scheduling the largest first
}

// whole is a range that reads all of the relation schema.name.
func whole(schema, name string, only bool, size int64) readRange {
	return readRange{schema: schema, name: name, only: only, hi: -1, size: size}
}

// from is the range's FROM clause target.
func (r readRange) from() string {
	s := pgx.Identifier{r.schema, r.name}.Sanitize()
	if r.only {
		s = "ONLY " + s
	}
	return s
}

// where is "" or " WHERE ..." with the range's ctid bounds.
func (r readRange) where() string {
	var conds []string
	if r.lo > 0 {
		conds = append(conds, fmt.Sprintf("ctid >= '(%d,0)'::tid", r.lo))
	}
	if r.hi >= 0 {
		conds = append(conds, fmt.Sprintf("ctid < '(%d,0)'::tid", r.hi))
	}
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// listTables lists every ordinary and partitioned (root) table the role may
// read, and with views also every view and materialized view, in schema and
// name order (byte order). It reads the catalog only, so it never waits for
// a lock on a table.
func listTables(ctx context.Context, conn *pgx.Conn, views bool) ([]*table, error) {
	kinds := []string{"r", "p"}
	if views {
		kinds = append(kinds, "v", "m")
	}
	rows, err := conn.Query(ctx, `
SELECT c.oid, n.nspname, c.relname, c.relkind::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind::text = ANY($1) AND NOT c.relispartition
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
  AND has_table_privilege(c.oid, 'SELECT')
ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"`, kinds)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var out []*table
	for rows.Next() {
		t := &table{}
		var kind string
		if err := rows.Scan(&t.oid, &t.schema, &t.relname, &kind); err != nil {
			return nil, fmt.Errorf("list tables: %w", err)
		}
		t.relkind = kind[0]
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return out, nil
}

// describe loads the table's columns, resolving domains to their base types,
// and its primary key. Policies are keyed "schema.table.column".
func describe(ctx context.Context, conn *pgx.Conn, t *table, policies map[string]Policy) error {
	rows, err := conn.Query(ctx, `
WITH RECURSIVE base(attnum, oid, typmod, depth) AS (
    SELECT a.attnum, a.atttypid, a.atttypmod, 0
    FROM pg_attribute a
    WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
    SELECT b.attnum, ty.typbasetype, CASE WHEN b.typmod = -1 THEN ty.typtypmod ELSE b.typmod END, b.depth + 1
    FROM base b JOIN pg_type ty ON ty.oid = b.oid
    WHERE ty.typtype = 'd'
)
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       b.oid, b.typmod, ty.typcategory::text, ty.typtype::text
FROM pg_attribute a
JOIN base b ON b.attnum = a.attnum
JOIN pg_type ty ON ty.oid = b.oid
WHERE a.attrelid = $1 AND ty.typtype <> 'd'
ORDER BY a.attnum`, t.oid)
	if err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	t.cols = nil
	var bases []uint32 // base type of each column
	for rows.Next() {
		var (
			c            column
			notNull      bool
			oid          uint32
			typmod       int32
			cat, typtype string
		)
		if err := rows.Scan(&c.source, &c.sourceType, &notNull, &oid, &typmod, &cat, &typtype); err != nil {
			return fmt.Errorf("describe: %w", err)
		}
		c.nullable = !notNull
		c.policy = policies[t.schema+"."+t.relname+"."+c.source]
		if c.policy == PolicyNull {
			c.nullable = true
		}
		c.classify(oid, typmod, cat[0], typtype[0])
		t.cols = append(t.cols, c)
		bases = append(bases, oid)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	// Arrays nested in arrays' and composites' values, whose bounds JSON
	// would drop: found from the catalog once rows is done.
	for i := range t.cols {
		if c := &t.cols[i]; c.toJSON {
			if c.nested, err = nestedBounds(ctx, conn, quoteIdent(c.source), bases[i]); err != nil {
				return fmt.Errorf("describe: column %s: %w", c.source, err)
			}
		}
	}
	names := make([]string, len(t.cols))
	for i := range t.cols {
		names[i] = t.cols[i].source
	}
	for i, n := range uniqueNames(names) {
		t.cols[i].name = n
	}

	rows, err = conn.Query(ctx, `
SELECT a.attname
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = $1 AND i.indisprimary
ORDER BY k.ord`, t.oid)
	if err != nil {
		return fmt.Errorf("primary key: %w", err)
	}
	keyNames, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("primary key: %w", err)
	}
	t.key = nil
	for _, k := range keyNames {
		for i := range t.cols {
			if t.cols[i].source == k {
				t.key = append(t.key, i)
			}
		}
	}
	t.useCtid = len(t.key) == 0 && t.relkind != 'v'
	return nil
}

// planRanges splits the table into ranges: a partitioned table into its
// leaf partitions (when the role may read each), and every ordinary table or
// leaf bigger than splitBytes into ctid block ranges of about splitBytes.
// pg_relation_size and pg_partition_tree take ACCESS SHARE locks: call it
// once the table is locked (a materialized view is not, so it may wait).
func planRanges(ctx context.Context, conn *pgx.Conn, t *table, splitBytes int64) error {
	type rel struct {
		schema, name string
		size         int64
	}
	var rels []rel
	if t.relkind == 'p' {
		rows, err := conn.Query(ctx, `
SELECT n.nspname, c.relname, pg_relation_size(c.oid), has_table_privilege(c.oid, 'SELECT')
FROM pg_partition_tree($1) p
JOIN pg_class c ON c.oid = p.relid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE p.isleaf AND c.relkind = 'r'
ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C"`, t.oid)
		if err != nil {
			return fmt.Errorf("partitions: %w", err)
		}
		readable := true
		for rows.Next() {
			var r rel
			var ok bool
			if err := rows.Scan(&r.schema, &r.name, &r.size, &ok); err != nil {
				return fmt.Errorf("partitions: %w", err)
			}
			readable = readable && ok
			rels = append(rels, r)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("partitions: %w", err)
		}
		var leafCount int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_partition_tree($1) WHERE isleaf`, t.oid).Scan(&leafCount); err != nil {
			return fmt.Errorf("partitions: %w", err)
		}
		if !readable || leafCount != len(rels) {
			// Leaves the role may not read directly, or foreign partitions:
			// read through the parent.
			t.ranges = []readRange{whole(t.schema, t.relname, false, 0)}
			return nil
		}
	} else if t.relkind == 'v' {
		t.ranges = []readRange{whole(t.schema, t.relname, false, 0)}
		return nil
	} else {
		r := rel{schema: t.schema, name: t.relname}
		if err := conn.QueryRow(ctx, `SELECT pg_relation_size($1)`, t.oid).Scan(&r.size); err != nil {
			return fmt.Errorf("table size: %w", err)
		}
		rels = []rel{r}
	}
	var blockSize int64
	if err := conn.QueryRow(ctx, `SELECT current_setting('block_size')::bigint`).Scan(&blockSize); err != nil {
		return fmt.Errorf("block size: %w", err)
	}
	t.ranges = nil
	for _, r := range rels {
		n := int64(1)
		if splitBytes > 0 && r.size > splitBytes {
			n = (r.size + splitBytes - 1) / splitBytes
		}
		blocks := r.size / blockSize
		if n == 1 || blocks < n {
			t.ranges = append(t.ranges, whole(r.schema, r.name, true, r.size))
			continue
		}
		// Block boundaries; the first range is open below and the last open
		// above, so rows added past the estimate are never missed.
		for i := int64(0); i < n; i++ {
			rg := readRange{schema: r.schema, name: r.name, only: true, lo: blocks * i / n, hi: blocks * (i + 1) / n, size: r.size / n}
			if i == n-1 {
				rg.hi = -1
			}
			t.ranges = append(t.ranges, rg)
		}
	}
	if len(t.ranges) == 0 {
		t.ranges = []readRange{whole(t.schema, t.relname, false, 0)} // a partitioned table without partitions
	}
	return nil
}
