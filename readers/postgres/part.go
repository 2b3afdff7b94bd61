package postgres

import (
	"context"
	"fmt"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/tenantlake/tenantlake/lake"
)

// orderedGroup is a Parquet group whose fields keep the source column order
// (parquet.Group sorts them by name).
type orderedGroup struct {
	parquet.Group
	order []string
}

func (g orderedGroup) Fields() []parquet.Field {
	byName := map[string]parquet.Field{}
	for _, f := range g.Group.Fields() {
		byName[f.Name()] = f
	}
	out := make([]parquet.Field, len(g.order))
	for i, n := range g.order {
		out[i] = byName[n]
	}
	return out
}

// parquetSchema builds the table's Parquet schema, one explicit node per
// column, in source order, named by destination names.
func parquetSchema(tb *table) *parquet.Schema {
	g := orderedGroup{Group: parquet.Group{}}
	for i := range tb.cols {
		g.Group[tb.cols[i].name] = tb.cols[i].node()
		g.order = append(g.order, tb.cols[i].name)
	}
	return parquet.NewSchema(tb.name, g)
}

// codec is the parquet compression: zstd at its fastest level, which keeps
// up with a PostgreSQL connection and still compresses well.
var codec = &zstd.Codec{Level: zstd.SpeedFastest}

// partWriter writes one range of a table as one or more parts, each bounded
// by opts.PartBytes and cut into row groups of opts.RowGroupBytes.
type partWriter struct {
	snap   *lake.Snapshot
	tb     *table
	opts   *Options
	always bool // write a part even with no rows (the table's first range)
	// number gives the part number of the range's j-th part; nil: the
	// table's next free number.
	number func(j int) (int, error)

	cancel    context.CancelFunc // aborts the current part's upload
	part      *lake.Part
	w         *parquet.Writer
	rows      int64 // rows in the current part
	rgBytes   int64
	partBytes int64

	files []lake.File
	total int64
}

func (pw *partWriter) open(ctx context.Context) error {
	var n int
	if pw.number != nil {
		var err error
		if n, err = pw.number(len(pw.files)); err != nil {
			return err
		}
	} else {
		pw.tb.mu.Lock()
		n = pw.tb.nextPart
		pw.tb.nextPart++
		pw.tb.mu.Unlock()
	}
	pctx, cancel := context.WithCancel(ctx)
	part, err := pw.snap.CreatePart(pctx, pw.tb.name, n)
	if err != nil {
		cancel()
		return err
	}
	pw.cancel, pw.part = cancel, part
	pw.w = parquet.NewWriter(part, pw.tb.pschema,
		parquet.Compression(codec),
		// PLAIN byte arrays compress better under zstd than parquet-go's
		// default DELTA_LENGTH_BYTE_ARRAY, at the same cost; 1 MiB pages
		// compress better than 256 KiB ones. The page index keeps min/max.
		parquet.DefaultEncodingFor(parquet.ByteArray, &parquet.Plain),
		parquet.PageBufferSize(1<<20),
		parquet.DataPageStatistics(false),
		parquet.CreatedBy("tenantlake", pw.opts.ToolVersion, ""),
	)
	pw.rows, pw.rgBytes, pw.partBytes = 0, 0, 0
	return nil
}

// write appends n rows, given column by column (cols[i][:n]), holding raw
// bytes of PostgreSQL values.
func (pw *partWriter) write(ctx context.Context, cols [][]parquet.Value, n int, raw int64) error {
	if pw.w == nil {
		if err := pw.open(ctx); err != nil {
			return err
		}
	}
	for i, cw := range pw.w.ColumnWriters() {
		if _, err := cw.WriteRowValues(cols[i][:n]); err != nil {
			return fmt.Errorf("write parquet column %s: %w", pw.tb.cols[i].name, err)
		}
	}
	pw.rows += int64(n)
	pw.rgBytes += raw
	pw.partBytes += raw
	switch {
	case pw.partBytes >= pw.opts.PartBytes:
		return pw.closePart()
	case pw.rgBytes >= pw.opts.RowGroupBytes:
		if err := pw.w.Flush(); err != nil {
			return fmt.Errorf("write parquet row group: %w", err)
		}
		pw.rgBytes = 0
	}
	return nil
}

func (pw *partWriter) closePart() error {
	if err := pw.w.Close(); err != nil {
		return fmt.Errorf("write parquet footer: %w", err)
	}
	pw.part.SetRows(pw.rows)
	if err := pw.part.Close(); err != nil {
		return err
	}
	pw.cancel()
	pw.files = append(pw.files, pw.part.File())
	pw.total += pw.rows
	pw.w, pw.part, pw.cancel = nil, nil, nil
	return nil
}

// finish closes the last part; a first range with no rows still writes one
// zero-row part that carries the schema.
func (pw *partWriter) finish(ctx context.Context) error {
	if pw.w == nil && pw.always && len(pw.files) == 0 {
		if err := pw.open(ctx); err != nil {
			return err
		}
	}
	if pw.w == nil {
		return nil
	}
	return pw.closePart()
}

// abort cancels the current part's upload, so nothing of it is left.
func (pw *partWriter) abort() {
	if pw.part == nil {
		return
	}
	pw.cancel()
	_ = pw.part.Close() // fails: the upload was cancelled on purpose
	pw.w, pw.part, pw.cancel = nil, nil, nil
}
