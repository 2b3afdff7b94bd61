package diff

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
	"github.com/parquet-go/parquet-go"
	"golang.org/x/sync/errgroup"

	"github.com/tenantlake/tenantlake/lake"
	"github.com/tenantlake/tenantlake/writers"
)

// maxDepth bounds how often a partition that is still too large is
// partitioned again (each time by a differently seeded hash).
const maxDepth = 4

// batchRows is how many rows PartRows decodes at a time.
const batchRows = 512

// field is one compared column: its index in each side and whether it is
// compared by canonical text (its type differs between the sides).
type field struct {
	idx   [2]int
	typ   [2]colType
	canon bool
}

// engine compares one table.
type engine struct {
	ctx context.Context
	lk  *lake.Lake
	opt Options

	tab   [2]*lake.Table // from, to
	types [2][]colType   // every column of each side
	keyed bool
	key   []field // the primary key's columns (keyed)
	cmp   []field // the other compared columns
	res   Table
	dir   string // spill folder, once made
}

const (
	sideFrom = 0
	sideTo   = 1
)

func (e *engine) rows() bool { return e.opt.Rows != nil }

// table compares from and to (either may be nil: the table was added or
// dropped).
func (e *engine) table(from, to *lake.Table) (Table, error) {
	e.tab = [2]*lake.Table{from, to}
	for s, t := range e.tab {
		if t == nil {
			continue
		}
		for _, c := range t.Columns {
			ct, err := parseType(c)
			if err != nil {
				return Table{}, err
			}
			e.types[s] = append(e.types[s], ct)
		}
	}
	switch {
	case from == nil:
		e.res = Table{Table: to.Name, Source: to.Source, Status: StatusAdded, RowsTo: to.Rows}
		return e.res, e.whole(sideTo)
	case to == nil:
		e.res = Table{Table: from.Name, Source: from.Source, Status: StatusDropped, RowsFrom: from.Rows}
		return e.res, e.whole(sideFrom)
	}
	e.res = Table{Table: to.Name, Source: to.Source, RowsFrom: from.Rows, RowsTo: to.Rows}
	e.res.ColumnsAdded, e.res.ColumnsDropped, e.res.ColumnsRetyped = schema(from, to)
	e.plan()
	var err error
	if estimate(from) <= min(e.opt.MemoryBytes, partitionBytes) {
		err = e.inMemory()
	} else {
		err = e.partitioned()
	}
	if e.dir != "" {
		err = errors.Join(err, os.RemoveAll(e.dir))
	}
	if err != nil {
		return Table{}, err
	}
	e.res.Status = StatusUnchanged
	if e.res.Inserted+e.res.Deleted+e.res.Updated > 0 || len(e.res.ColumnsAdded)+len(e.res.ColumnsDropped)+len(e.res.ColumnsRetyped) > 0 {
		e.res.Status = StatusChanged
	}
	return e.res, nil
}

// plan chooses how rows are matched and which columns are compared.
func (e *engine) plan() {
	from, to := e.tab[sideFrom], e.tab[sideTo]
	e.keyed = len(to.PrimaryKey) > 0 && slices.Equal(from.PrimaryKey, to.PrimaryKey)
	if e.keyed {
		e.res.Compare, e.res.Key = CompareKey, slices.Clone(to.PrimaryKey)
	} else {
		e.res.Compare = CompareRows
		switch {
		case len(from.PrimaryKey)+len(to.PrimaryKey) == 0:
		case len(from.PrimaryKey) == 0:
			e.res.Note = fmt.Sprintf("primary key (%s) added: rows compared as a multiset of whole rows", strings.Join(to.PrimaryKey, ", "))
		case len(to.PrimaryKey) == 0:
			e.res.Note = fmt.Sprintf("primary key (%s) dropped: rows compared as a multiset of whole rows", strings.Join(from.PrimaryKey, ", "))
		default:
			e.res.Note = fmt.Sprintf("primary key changed from (%s) to (%s): rows compared as a multiset of whole rows",
				strings.Join(from.PrimaryKey, ", "), strings.Join(to.PrimaryKey, ", "))
		}
	}
	mk := func(name string) (field, bool) {
		fi, ti := colIndex(from, name), colIndex(to, name)
		if fi < 0 || ti < 0 {
			return field{}, false
		}
		f := field{idx: [2]int{fi, ti}, typ: [2]colType{e.types[sideFrom][fi], e.types[sideTo][ti]}}
		f.canon = from.Columns[fi].ParquetType != to.Columns[ti].ParquetType
		return f, true
	}
	if e.keyed {
		for _, k := range to.PrimaryKey {
			if f, ok := mk(k); ok {
				e.key = append(e.key, f)
			}
		}
	}
	for _, c := range to.Columns {
		if e.keyed && slices.Contains(to.PrimaryKey, c.Name) {
			continue
		}
		if f, ok := mk(c.Name); ok {
			e.cmp = append(e.cmp, f)
		}
	}
}

// estimate is a generous guess of the bytes a table's rows take encoded
// (Parquet compresses them about four times), to decide whether the older
// side fits in memory.
func estimate(t *lake.Table) int64 {
	var b int64
	for _, f := range t.Files {
		b += f.Bytes
	}
	return 5*b + 48*t.Rows
}

// ---- encoding ----

// appendField appends one compared value: 0 for NULL, else 1, the length
// and the value's raw bytes (or, for a retyped column, its canonical text).
func appendField(dst, scratch []byte, v parquet.Value, f field, side int) ([]byte, []byte, error) {
	if v.IsNull() {
		return append(dst, 0), scratch, nil
	}
	scratch = appendRaw(scratch[:0], v)
	b := scratch
	if f.canon {
		s, err := text(f.typ[side], scratch, true)
		if err != nil {
			return dst, scratch, err
		}
		b = []byte(s)
	}
	dst = append(dst, 1)
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...), scratch, nil
}

// appendRow appends every column of a row, raw, for rendering.
func appendRow(dst []byte, row parquet.Row, leaf []int) []byte {
	for _, l := range leaf {
		v := row[l]
		if v.IsNull() {
			dst = append(dst, 0)
			continue
		}
		n := len(dst)
		dst = append(dst, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) // tag and room for the uvarint
		dst = appendRaw(dst, v)
		size := len(dst) - n - 11
		var u [binary.MaxVarintLen64]byte
		w := binary.PutUvarint(u[:], uint64(size))
		copy(dst[n+1:], u[:w])
		copy(dst[n+1+w:], dst[n+11:])
		dst = dst[:n+1+w+size]
	}
	return dst
}

// render decodes an appendRow encoding of side's columns as a Row.
func (e *engine) render(side int, r string) (*Row, error) {
	t := e.tab[side]
	row := &Row{Names: make([]string, len(t.Columns)), Values: make([]json.RawMessage, len(t.Columns))}
	b := []byte(r)
	for i, c := range t.Columns {
		row.Names[i] = c.Name
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: spilled row ends early", ErrCorruptValue)
		}
		tag := b[0]
		b = b[1:]
		if tag == 0 {
			row.Values[i] = json.RawMessage("null")
			continue
		}
		n, w := binary.Uvarint(b)
		if w <= 0 || uint64(len(b)-w) < n {
			return nil, fmt.Errorf("%w: spilled row is malformed", ErrCorruptValue)
		}
		v, err := jsonValue(e.types[side][i], b[w:w+int(n)])
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		row.Values[i] = v
		b = b[w+int(n):]
	}
	return row, nil
}

// keyOf is the key part of a rendered row.
func (e *engine) keyOf(r *Row) *Row {
	k := &Row{}
	for _, name := range e.res.Key {
		k.Names = append(k.Names, name)
		k.Values = append(k.Values, r.Get(name))
	}
	return k
}

// ownKey is the key part of a rendered row of side by that side's own
// primary key, or nil when it has none: the key of a row of a table only
// one snapshot has, or of a table whose primary key changed (compared as a
// multiset), so that a row's history can still be followed by key.
func (e *engine) ownKey(side int, r *Row) *Row {
	pk := e.tab[side].PrimaryKey
	if len(pk) == 0 {
		return nil
	}
	k := &Row{}
	for _, name := range pk {
		k.Names = append(k.Names, name)
		k.Values = append(k.Values, r.Get(name))
	}
	return k
}

// ---- scanning ----

// scan reads every row of one side and calls fn with its key, compared
// columns and (with Options.Rows) the whole row, each valid until fn
// returns. It checks that the parts hold the rows the manifest says.
func (e *engine) scan(ctx context.Context, side int, fn func(k, c, r []byte) error) (err error) {
	t := e.tab[side]
	pr := writers.NewPartRows(ctx, e.lk, t, t.Files, batchRows)
	defer func() {
		if cerr := pr.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close parts: %w", cerr))
		}
	}()
	var k, c, r, scratch []byte
	var n int64
	for {
		ok, err := pr.Next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		row, leaf := pr.Row(), pr.Leaf()
		k, c, r = k[:0], c[:0], r[:0]
		for _, f := range e.key {
			if k, scratch, err = appendField(k, scratch, row[leaf[f.idx[side]]], f, side); err != nil {
				return fmt.Errorf("column %s: %w", t.Columns[f.idx[side]].Name, err)
			}
		}
		for _, f := range e.cmp {
			if c, scratch, err = appendField(c, scratch, row[leaf[f.idx[side]]], f, side); err != nil {
				return fmt.Errorf("column %s: %w", t.Columns[f.idx[side]].Name, err)
			}
		}
		if e.rows() {
			r = appendRow(r, row, leaf)
		}
		if err := fn(k, c, r); err != nil {
			return err
		}
		n++
	}
	if n != t.Rows {
		return fmt.Errorf("%w: the parts of table %s hold %d rows, its manifest says %d", lake.ErrCorrupt, t.Name, n, t.Rows)
	}
	return nil
}

// whole reports every row of a table only one side has.
func (e *engine) whole(side int) error {
	if side == sideTo {
		e.res.Inserted = e.tab[side].Rows
	} else {
		e.res.Deleted = e.tab[side].Rows
	}
	if !e.rows() {
		return nil
	}
	t := e.tab[side]
	return e.scan(e.ctx, side, func(_, _, r []byte) error {
		row, err := e.render(side, string(r))
		if err != nil {
			return err
		}
		key := e.ownKey(side, row)
		if side == sideTo {
			return e.opt.Rows(Change{Table: t.Name, Op: OpInsert, Key: key, After: row})
		}
		return e.opt.Rows(Change{Table: t.Name, Op: OpDelete, Key: key, Before: row})
	})
}

// ---- matching ----

// entry states in a keyed match.
const (
	onlyFrom byte = iota
	matched
	onlyTo
)

type entry struct {
	c, r  string
	state byte
}

// bag counts the copies of one row of a multiset; with Options.Rows it
// keeps the whole rows too, runs of identical ones as one (so a million
// identical rows take the memory of one).
type bag struct {
	n  int64
	rs []run
}

type run struct {
	r string
	n int64
}

// match holds one partition's older side and meets the newer side's rows.
type match struct {
	e     *engine
	keyed map[string]entry
	multi map[string]bag
}

func (e *engine) newMatch() *match {
	m := &match{e: e}
	if e.keyed {
		m.keyed = map[string]entry{}
	} else {
		m.multi = map[string]bag{}
	}
	return m
}

func (m *match) addFrom(k, c, r []byte) error {
	if m.keyed != nil {
		if _, dup := m.keyed[string(k)]; dup {
			return fmt.Errorf("%w: snapshot %s holds a primary key twice", lake.ErrCorrupt, m.e.res.Table)
		}
		m.keyed[string(k)] = entry{c: string(c), r: string(r)}
		return nil
	}
	b := m.multi[string(c)]
	b.n++
	if m.e.rows() {
		if l := len(b.rs) - 1; l >= 0 && b.rs[l].r == string(r) {
			b.rs[l].n++
		} else {
			b.rs = append(b.rs, run{r: string(r), n: 1})
		}
	}
	m.multi[string(c)] = b
	return nil
}

func (m *match) addTo(k, c, r []byte) error {
	e := m.e
	name := e.res.Table
	if m.keyed != nil {
		old, ok := m.keyed[string(k)]
		switch {
		case ok && old.state != onlyFrom:
			return fmt.Errorf("%w: the newer snapshot of %s holds a primary key twice", lake.ErrCorrupt, name)
		case !ok:
			e.res.Inserted++
			m.keyed[string(k)] = entry{state: onlyTo}
			if e.rows() {
				after, err := e.render(sideTo, string(r))
				if err != nil {
					return err
				}
				return e.opt.Rows(Change{Table: name, Op: OpInsert, Key: e.keyOf(after), After: after})
			}
			return nil
		}
		m.keyed[string(k)] = entry{state: matched}
		if old.c == string(c) {
			return nil
		}
		e.res.Updated++
		if !e.rows() {
			return nil
		}
		before, err := e.render(sideFrom, old.r)
		if err != nil {
			return err
		}
		after, err := e.render(sideTo, string(r))
		if err != nil {
			return err
		}
		return e.opt.Rows(Change{Table: name, Op: OpUpdate, Key: e.keyOf(after), Before: before, After: after})
	}
	b, ok := m.multi[string(c)]
	if ok && b.n > 0 {
		b.n--
		if e.rows() {
			if b.rs[0].n--; b.rs[0].n == 0 {
				b.rs = b.rs[1:]
			}
		}
		if b.n == 0 {
			delete(m.multi, string(c))
		} else {
			m.multi[string(c)] = b
		}
		return nil
	}
	e.res.Inserted++
	if !e.rows() {
		return nil
	}
	after, err := e.render(sideTo, string(r))
	if err != nil {
		return err
	}
	return e.opt.Rows(Change{Table: name, Op: OpInsert, Key: e.ownKey(sideTo, after), After: after})
}

// finish counts (and reports) the older side's rows the newer lacks.
func (m *match) finish() error {
	e := m.e
	name := e.res.Table
	if m.keyed != nil {
		if !e.rows() {
			for _, v := range m.keyed {
				if v.state == onlyFrom {
					e.res.Deleted++
				}
			}
			return nil
		}
		for _, k := range sortedKeys(m.keyed) {
			v := m.keyed[k]
			if v.state != onlyFrom {
				continue
			}
			e.res.Deleted++
			before, err := e.render(sideFrom, v.r)
			if err != nil {
				return err
			}
			if err := e.opt.Rows(Change{Table: name, Op: OpDelete, Key: e.keyOf(before), Before: before}); err != nil {
				return err
			}
		}
		return nil
	}
	if !e.rows() {
		for _, b := range m.multi {
			e.res.Deleted += b.n
		}
		return nil
	}
	for _, c := range sortedKeys(m.multi) {
		for _, run := range m.multi[c].rs {
			before, err := e.render(sideFrom, run.r)
			if err != nil {
				return err
			}
			for i := int64(0); i < run.n; i++ {
				e.res.Deleted++
				if err := e.opt.Rows(Change{Table: name, Op: OpDelete, Key: e.ownKey(sideFrom, before), Before: before}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// inMemory compares a table whose older side fits in memory.
func (e *engine) inMemory() error {
	m := e.newMatch()
	if err := e.scan(e.ctx, sideFrom, m.addFrom); err != nil {
		return err
	}
	if err := e.scan(e.ctx, sideTo, m.addTo); err != nil {
		return err
	}
	return m.finish()
}

// ---- spilling ----

// hashOf is the partition hash of a record: its key, or for a multiset its
// compared columns, mixed with the partitioning depth.
func (e *engine) hashOf(k, c []byte, depth int) uint64 {
	b := k
	if !e.keyed {
		b = c
	}
	h := xxhash.Sum64(b) + uint64(depth)*0x9e3779b97f4a7c15
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	return h ^ h>>31
}

// spill is a set of partition files of one side.
type spill struct {
	files []*os.File
	w     []*bufio.Writer
}

func (e *engine) newSpill(n int, name string) (*spill, error) {
	if e.dir == "" {
		d, err := os.MkdirTemp(e.opt.TempDir, "tenantlake-diff-")
		if err != nil {
			return nil, fmt.Errorf("spill folder: %w", err)
		}
		e.dir = d
	}
	s := &spill{}
	for i := 0; i < n; i++ {
		f, err := os.CreateTemp(e.dir, name+"-*.spill")
		if err != nil {
			return s, errors.Join(fmt.Errorf("spill file: %w", err), s.close())
		}
		s.files = append(s.files, f)
		s.w = append(s.w, bufio.NewWriterSize(f, 32<<10))
	}
	return s, nil
}

func writeRecord(w *bufio.Writer, k, c, r []byte) error {
	var u [binary.MaxVarintLen64]byte
	for _, b := range [][]byte{k, c, r} {
		if _, err := w.Write(u[:binary.PutUvarint(u[:], uint64(len(b)))]); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// finishWrites flushes every file and rewinds it for reading.
func (s *spill) finishWrites() error {
	for i, w := range s.w {
		if err := w.Flush(); err != nil {
			return fmt.Errorf("spill file: %w", err)
		}
		if _, err := s.files[i].Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("spill file: %w", err)
		}
	}
	return nil
}

// closeOne closes and removes file i.
func (s *spill) closeOne(i int) error {
	f := s.files[i]
	if f == nil {
		return nil
	}
	s.files[i] = nil
	return errors.Join(f.Close(), os.Remove(f.Name()))
}

func (s *spill) close() error {
	var errs []error
	for i := range s.files {
		errs = append(errs, s.closeOne(i))
	}
	return errors.Join(errs...)
}

// readRecords calls fn for every record of a spill file.
func (e *engine) readRecords(f *os.File, fn func(k, c, r []byte) error) error {
	br := bufio.NewReaderSize(f, 256<<10)
	var bufs [3][]byte
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := e.ctx.Err(); err != nil {
				return err
			}
		}
		for i := range bufs {
			size, err := binary.ReadUvarint(br)
			if i == 0 && errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("spill file %s: %w", f.Name(), noEOF(err))
			}
			if uint64(cap(bufs[i])) < size {
				bufs[i] = make([]byte, size)
			}
			bufs[i] = bufs[i][:size]
			if _, err := io.ReadFull(br, bufs[i]); err != nil {
				return fmt.Errorf("spill file %s: %w", f.Name(), noEOF(err))
			}
		}
		if err := fn(bufs[0], bufs[1], bufs[2]); err != nil {
			return err
		}
	}
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// partitionBytes is the size of partition aimed at: far below any sensible
// memory budget, because small hash tables stay in the processor's caches
// (measured: 4 MiB partitions diff faster than 64 MiB ones, and a table
// that fits in memory diffs faster partitioned, both sides spilled at
// once, than in memory, one side after the other).
const partitionBytes = 4 << 20

// partitions is how many partitions a side of est bytes needs, at most
// limit.
func (e *engine) partitions(est int64, limit int) int {
	n := int(est/min(e.opt.MemoryBytes, partitionBytes)) + 1
	return min(max(n, 2), limit)
}

// partitioned spills both sides (concurrently) into partitions by hash and
// compares them one at a time.
func (e *engine) partitioned() (err error) {
	n := e.partitions(estimate(e.tab[sideFrom]), 256)
	var sp [2]*spill
	defer func() {
		for _, s := range sp {
			if s != nil {
				err = errors.Join(err, s.close())
			}
		}
	}()
	for side, name := range []string{"from", "to"} {
		if sp[side], err = e.newSpill(n, name); err != nil {
			return err
		}
	}
	g, ctx := errgroup.WithContext(e.ctx)
	for side := range sp {
		s := sp[side]
		g.Go(func() error {
			err := e.scan(ctx, side, func(k, c, r []byte) error {
				return writeRecord(s.w[e.hashOf(k, c, 0)%uint64(n)], k, c, r)
			})
			if err != nil {
				return err
			}
			return s.finishWrites()
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := e.partition(sp[sideFrom].files[i], sp[sideTo].files[i], 1); err != nil {
			return err
		}
		if err := errors.Join(sp[sideFrom].closeOne(i), sp[sideTo].closeOne(i)); err != nil {
			return err
		}
	}
	return nil
}

// partition compares one pair of partition files, partitioning them again
// first when the older side's is larger than the memory budget.
func (e *engine) partition(from, to *os.File, depth int) (err error) {
	st, err := from.Stat()
	if err != nil {
		return fmt.Errorf("spill file: %w", err)
	}
	if st.Size() <= e.opt.MemoryBytes || depth >= maxDepth {
		m := e.newMatch()
		if err := e.readRecords(from, m.addFrom); err != nil {
			return err
		}
		if err := e.readRecords(to, m.addTo); err != nil {
			return err
		}
		return m.finish()
	}
	n := e.partitions(st.Size(), 16)
	var sp [2]*spill
	defer func() {
		for _, s := range sp {
			if s != nil {
				err = errors.Join(err, s.close())
			}
		}
	}()
	for side, f := range []*os.File{from, to} {
		if sp[side], err = e.newSpill(n, []string{"from", "to"}[side]); err != nil {
			return err
		}
		s := sp[side]
		err := e.readRecords(f, func(k, c, r []byte) error {
			return writeRecord(s.w[e.hashOf(k, c, depth)%uint64(n)], k, c, r)
		})
		if err != nil {
			return err
		}
		if err := s.finishWrites(); err != nil {
			return err
		}
	}
	for i := 0; i < n; i++ {
		if err := e.partition(sp[sideFrom].files[i], sp[sideTo].files[i], depth+1); err != nil {
			return err
		}
		if err := errors.Join(sp[sideFrom].closeOne(i), sp[sideTo].closeOne(i)); err != nil {
			return err
		}
	}
	return nil
}
