// Package lake is tenantlake's staging lake: immutable, timestamped Parquet
// snapshots of every tenant, on any gocloud.dev/blob bucket (file://, mem://,
// gs://).
//
// # Commit protocol
//
// A read strategy writes a snapshot's parts with Snapshot.CreatePart and then
// commits it with Snapshot.Commit, which writes _manifest.json last. Every
// object is written once, with an if-not-exists precondition; nothing is ever
// rewritten. A snapshot exists only once its manifest exists: parts without a
// manifest (a crashed read) are invisible to the catalog and swept by GC.
//
// # Catalog
//
// Tenants, Snapshots, Resolve (as of a time), Manifest and OpenPart read the
// lake; they never return uncommitted data.
//
// # Retention
//
// GC deletes whole snapshots (manifest first, then parts) beyond a policy, and
// orphan parts older than a grace period.
package lake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"strings"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file://
	_ "gocloud.dev/blob/gcsblob"  // gs://
	_ "gocloud.dev/blob/memblob"  // mem://
	"gocloud.dev/gcerrors"
)

// Lake is an open staging lake. It is safe for concurrent use.
type Lake struct {
	bucket *blob.Bucket
	url    string
	gcs    string // "gs://bucket/prefix/" when the lake is on GCS, else ""
}

// Open opens the lake at urlstr: file:///path (created if missing),
// mem:// or gs://bucket/prefix. Credentials come from the environment, never
// from the URL. Query parameters are passed to the gocloud.dev opener.
func Open(ctx context.Context, urlstr string) (*Lake, error) {
	u, err := url.Parse(urlstr)
	if err != nil {
		return nil, fmt.Errorf("lake: %w: URL %q: %v", ErrInvalid, urlstr, err)
	}
	if u.User != nil {
		return nil, fmt.Errorf("lake: %w: URL must not carry credentials", ErrInvalid)
	}
	prefix := ""
	opener := *u
	switch u.Scheme {
	case "file":
		q := opener.Query()
		if !q.Has("create_dir") {
			q.Set("create_dir", "true")
		}
		// No attribute sidecar files: the manifest is the metadata.
		if !q.Has("metadata") {
			q.Set("metadata", "skip")
		}
		opener.RawQuery = q.Encode()
	case "mem":
	case "gs":
		prefix = strings.Trim(u.Path, "/")
		if prefix != "" {
			prefix += "/"
		}
		opener.Path = ""
		q := opener.Query()
		if prefix != "" {
			q.Set("prefix", prefix)
		}
		opener.RawQuery = q.Encode()
	default:
		return nil, fmt.Errorf("lake: %w: URL %q: scheme must be file, mem or gs", ErrInvalid, urlstr)
	}
	b, err := blob.OpenBucket(ctx, opener.String())
	if err != nil {
		return nil, fmt.Errorf("lake: open %s: %w", urlstr, err)
	}
	l := &Lake{bucket: b, url: urlstr}
	if u.Scheme == "gs" {
		l.gcs = "gs://" + u.Host + "/" + prefix
	}
	return l, nil
}

// NewLake wraps an already open bucket. gcsBase is "gs://bucket/prefix/" when
// the bucket is on GCS (so loads can read parts by URI), else "".
func NewLake(b *blob.Bucket, name, gcsBase string) *Lake {
	return &Lake{bucket: b, url: name, gcs: gcsBase}
}

// URL returns the URL the lake was opened with.
func (l *Lake) URL() string { return l.url }

// GCSURI returns the gs:// URI of key when the lake is on GCS; ok is false
// otherwise (the object must then be streamed).
func (l *Lake) GCSURI(key string) (uri string, ok bool) {
	if l.gcs == "" {
		return "", false
	}
	return l.gcs + key, true
}

// Close closes the lake's bucket.
func (l *Lake) Close() error { return l.bucket.Close() }

// kind maps a blob error to one of this package's error kinds.
func kind(err error) error {
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return ErrNotFound
	case gcerrors.FailedPrecondition, gcerrors.AlreadyExists:
		return ErrExists
	}
	return nil
}

func wrap(op, key string, err error) error {
	if k := kind(err); k != nil {
		return fmt.Errorf("lake: %s %q: %w: %w", op, key, k, err)
	}
	return fmt.Errorf("lake: %s %q: %w", op, key, err)
}

// Snapshot is a snapshot being written. Create it with Lake.NewSnapshot, write
// parts with CreatePart, and make it visible with Commit. Abandoning it leaves
// orphan parts, invisible until GC sweeps them.
type Snapshot struct {
	lake   *Lake
	tenant string
	id     string
}

// NewSnapshot starts writing snapshot id of tenant. It fails with ErrInvalid
// for a bad tenant or snapshot id and ErrExists if that snapshot is already
// committed.
func (l *Lake) NewSnapshot(ctx context.Context, tenant, id string) (*Snapshot, error) {
	if err := validTenant(tenant); err != nil {
		return nil, fmt.Errorf("lake: new snapshot: %w", err)
	}
	if _, err := ParseSnapshotID(id); err != nil {
		return nil, fmt.Errorf("lake: new snapshot: %w", err)
	}
	key := ManifestKey(tenant, id)
	ok, err := l.bucket.Exists(ctx, key)
	if err != nil {
		return nil, wrap("check", key, err)
	}
	if ok {
		return nil, fmt.Errorf("lake: new snapshot %q: %w", key, ErrExists)
	}
	return &Snapshot{lake: l, tenant: tenant, id: id}, nil
}

// Tenant returns the snapshot's tenant id.
func (s *Snapshot) Tenant() string { return s.tenant }

// ID returns the snapshot id.
func (s *Snapshot) ID() string { return s.id }

// Part is one Parquet part being written. Write to it, then Close it and
// check the error: the upload completes (or fails) in Close. File then
// describes what was written.
type Part struct {
	w     *blob.Writer
	key   string
	hash  hash.Hash
	bytes int64
	rows  int64
	done  bool
}

// CreatePart creates part n of table in the snapshot, write-once. It fails
// with ErrExists (at Close, on some backends) if the part already exists.
// Cancelling ctx aborts the upload; nothing is then left in the lake.
func (s *Snapshot) CreatePart(ctx context.Context, table string, n int) (*Part, error) {
	if err := validTableName(table); err != nil {
		return nil, fmt.Errorf("lake: create part: %w", err)
	}
	key := PartKey(s.tenant, s.id, table, n)
	w, err := s.lake.bucket.NewWriter(ctx, key, &blob.WriterOptions{
		ContentType: "application/vnd.apache.parquet",
		IfNotExist:  true,
	})
	if err != nil {
		return nil, wrap("create part", key, err)
	}
	return &Part{w: w, key: key, hash: sha256.New()}, nil
}

// Write writes p to the part.
func (p *Part) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.hash.Write(b[:n])
	p.bytes += int64(n)
	if err != nil {
		return n, wrap("write part", p.key, err)
	}
	return n, nil
}

// SetRows records how many rows the part holds, for File.
func (p *Part) SetRows(n int64) { p.rows = n }

// Close finishes the upload. A nil error means the part is durably stored.
func (p *Part) Close() error {
	if err := p.w.Close(); err != nil {
		return wrap("write part", p.key, err)
	}
	p.done = true
	return nil
}

// File describes the part for the manifest. Call it after a successful Close.
func (p *Part) File() File {
	return File{Path: p.key, Rows: p.rows, Bytes: p.bytes, SHA256: hex.EncodeToString(p.hash.Sum(nil))}
}

// Commit writes the manifest, making the snapshot visible. m's tenant and
// snapshot id must be the snapshot's; its files must be parts of this
// snapshot. If another writer committed the same snapshot first, Commit
// returns an error wrapping ErrExists and the lake keeps the first manifest.
func (s *Snapshot) Commit(ctx context.Context, m *Manifest) error {
	key := ManifestKey(s.tenant, s.id)
	if m.Tenant != s.tenant || m.SnapshotID != s.id {
		return fmt.Errorf("lake: commit %q: %w: manifest is for %s/%s", key, ErrInvalid, m.Tenant, m.SnapshotID)
	}
	if m.FormatVersion == 0 {
		m.FormatVersion = FormatVersion
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("lake: commit %q: %w: %w", key, ErrInvalid, err)
	}
	prefix := SnapshotPrefix(s.tenant, s.id)
	for _, t := range m.Tables {
		for _, f := range t.Files {
			if !strings.HasPrefix(f.Path, prefix+"table="+t.Name+"/") {
				return fmt.Errorf("lake: commit %q: %w: file %q is not a part of table %s of this snapshot", key, ErrInvalid, f.Path, t.Name)
			}
		}
	}
	data, err := encodeJSON(m)
	if err != nil {
		return fmt.Errorf("lake: commit %q: %w", key, err)
	}
	if err := s.lake.writeOnce(ctx, key, "application/json", data); err != nil {
		return fmt.Errorf("lake: commit: %w", err)
	}
	return nil
}

func (l *Lake) writeOnce(ctx context.Context, key, contentType string, data []byte) error {
	err := l.bucket.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: contentType, IfNotExist: true})
	if err != nil {
		return wrap("write", key, err)
	}
	return nil
}

func (l *Lake) readAll(ctx context.Context, key string) ([]byte, error) {
	data, err := l.bucket.ReadAll(ctx, key)
	if err != nil {
		return nil, wrap("read", key, err)
	}
	return data, nil
}

// OpenPart opens a part listed in a committed manifest for reading. The
// returned PartReader is an io.ReaderAt (for Parquet readers) and io.Reader.
func (l *Lake) OpenPart(ctx context.Context, f File) (*PartReader, error) {
	attrs, err := l.bucket.Attributes(ctx, f.Path)
	if err != nil {
		return nil, wrap("open part", f.Path, err)
	}
	if attrs.Size != f.Bytes {
		return nil, fmt.Errorf("lake: open part %q: object has %d bytes, manifest says %d", f.Path, attrs.Size, f.Bytes)
	}
	return &PartReader{ctx: ctx, b: l.bucket, key: f.Path, size: attrs.Size}, nil
}

// PartReader reads one part. Reads go straight to the bucket.
type PartReader struct {
	ctx  context.Context
	b    *blob.Bucket
	key  string
	size int64
	off  int64
}

// Size returns the part's size in bytes.
func (r *PartReader) Size() int64 { return r.size }

// ReadAt implements io.ReaderAt.
func (r *PartReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	n := int64(len(p))
	if off+n > r.size {
		n = r.size - off
	}
	rr, err := r.b.NewRangeReader(r.ctx, r.key, off, n, nil)
	if err != nil {
		return 0, wrap("read part", r.key, err)
	}
	got, err := io.ReadFull(rr, p[:n])
	if cerr := rr.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return got, wrap("read part", r.key, err)
	}
	if got < len(p) {
		return got, io.EOF
	}
	return got, nil
}

// Read implements io.Reader.
func (r *PartReader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

// Close releases nothing; it exists so callers can treat parts as files.
func (r *PartReader) Close() error { return nil }

// Verify reads the whole part and checks its size and SHA-256 against f.
func (l *Lake) Verify(ctx context.Context, f File) error {
	rd, err := l.bucket.NewReader(ctx, f.Path, nil)
	if err != nil {
		return wrap("verify part", f.Path, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, rd)
	if cerr := rd.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return wrap("verify part", f.Path, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != f.Bytes || sum != f.SHA256 {
		return fmt.Errorf("lake: verify part %q: %d bytes sha256 %s, manifest says %d bytes sha256 %s", f.Path, n, sum, f.Bytes, f.SHA256)
	}
	return nil
}
