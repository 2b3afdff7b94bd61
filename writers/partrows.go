package writers

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/tenantlake/tenantlake/lake"
)

// PartRows reads the rows of some of a table's Parquet parts, in order, a
// batch at a time: memory holds one batch and one row group's pages,
// whatever the table's size. Column j of the manifest is value Leaf()[j] of
// Row(). Write strategies encode rows from it for their bulk-load paths.
//
// Every part is checked against its manifest's size and SHA-256 before a
// byte of it is parsed (lake.OpenPart reads it once through the hash
// first): a part that differs stops Next with an error wrapping
// lake.ErrCorrupt that names it, before any of its rows is returned, and
// write strategies quarantine the load.
type PartRows struct {
	ctx   context.Context
	lk    *lake.Lake
	table *lake.Table

	files    []lake.File
	part     *lake.PartReader // the open part, if any
	groups   []parquet.RowGroup
	leaf     []int
	rows     parquet.Rows
	batch    []parquet.Row
	n, i     int
	lakeRows int64
}

// NewPartRows reads files, parts of table t in lk, batchRows rows at a time.
// The caller calls Close.
func NewPartRows(ctx context.Context, lk *lake.Lake, t *lake.Table, files []lake.File, batchRows int) *PartRows {
	return &PartRows{ctx: ctx, lk: lk, table: t, files: files, batch: make([]parquet.Row, batchRows)}
}

// Next advances to the next row, opening parts and row groups as needed. It
// returns false at the end of the last part.
func (r *PartRows) Next() (bool, error) {
	for {
		if r.i < r.n {
			r.i++
			return true, nil
		}
		switch {
		case r.rows != nil:
			n, err := r.rows.ReadRows(r.batch)
			r.n, r.i = n, 0
			if errors.Is(err, io.EOF) {
				if err := r.closeRows(); err != nil {
					return false, err
				}
			} else if err != nil {
				return false, errors.Join(fmt.Errorf("read rows: %w", err), r.closeRows())
			}
		case len(r.groups) > 0:
			r.rows = r.groups[0].Rows()
			r.groups = r.groups[1:]
		case len(r.files) > 0:
			if err := r.closePart(); err != nil {
				return false, err
			}
			if err := r.openFile(r.files[0]); err != nil {
				return false, err
			}
			r.files = r.files[1:]
		default:
			return false, r.closePart()
		}
	}
}

// Row returns the current row; it is valid until the next call of Next.
func (r *PartRows) Row() parquet.Row { return r.batch[r.i-1] }

// Leaf returns, per manifest column, its value's index in Row.
func (r *PartRows) Leaf() []int { return r.leaf }

// LakeRows returns the rows the footers of the parts opened so far hold.
func (r *PartRows) LakeRows() int64 { return r.lakeRows }

// Close releases the open row group and part, if any.
func (r *PartRows) Close() error {
	var err error
	if r.rows != nil {
		err = r.closeRows()
	}
	return errors.Join(err, r.closePart())
}

func (r *PartRows) closePart() error {
	if r.part == nil {
		return nil
	}
	err := r.part.Close()
	r.part = nil
	return err
}

func (r *PartRows) closeRows() error {
	err := r.rows.Close()
	r.rows = nil
	if err != nil {
		return fmt.Errorf("close row group: %w", err)
	}
	return nil
}

func (r *PartRows) openFile(f lake.File) error {
	pr, err := r.lk.OpenPart(r.ctx, f)
	if err != nil {
		return err
	}
	r.part = pr
	pf, err := parquet.OpenFile(pr, pr.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true), parquet.ReadBufferSize(1<<20))
	if err != nil {
		return fmt.Errorf("open part %s: %w", f.Path, err)
	}
	r.lakeRows += pf.NumRows()
	r.leaf = r.leaf[:0]
	for _, c := range r.table.Columns {
		lc, ok := pf.Schema().Lookup(c.Name)
		if !ok {
			return fmt.Errorf("part %s has no column %s", f.Path, c.Name)
		}
		r.leaf = append(r.leaf, lc.ColumnIndex)
	}
	r.groups = pf.RowGroups()
	return nil
}
