// Package lake is tenantlake's staging lake: immutable, timestamped Parquet
// snapshots of every tenant, on any gocloud.dev/blob bucket (file://, mem://,
// gs://). Read strategies write snapshots into it; write strategies and
// replays read them back; nothing else couples the two.
//
// # Layout
//
//	tenant=<tenant>/snapshot=<snapshot-id>/table=<table>/part-<NNNNN>.parquet
//	tenant=<tenant>/snapshot=<snapshot-id>/_manifest.json
//	tenant=<tenant>/_loads/target=<target>/<snapshot-id>.<load-id>.json
//
// Tenant ids, snapshot ids, table names, targets and load ids are checked
// against allow-lists before they become part of a key; a bad one fails with
// ErrInvalid and nothing is read or written.
//
// # Commit protocol
//
// A read strategy writes a snapshot's parts with Snapshot.CreatePart and then
// commits it with Snapshot.Commit, which writes _manifest.json last. Every
// object is written once, with an if-not-exists precondition; nothing is ever
// rewritten. A snapshot exists only once its manifest exists: parts without a
// manifest (a crashed read) are invisible to the catalog and swept by GC.
// When two writers commit the same snapshot id, exactly one wins and the
// other gets ErrExists:
//
//   - gs:// sends ifGenerationMatch=0, which GCS checks atomically;
//   - mem:// checks under the bucket's lock (one process only);
//   - file:// lakes opened with Open write every object to a temporary file
//     beside its final name and then hard-link it into place, which fails if
//     the name exists: atomic across processes on one machine, and a reader
//     never sees a half-written object. The lake folder must therefore be on
//     a file system with hard links (any local Linux or macOS one; not FAT,
//     and on network file systems only as atomic as their link(2)). A crashed
//     writer can leave a "<name>.<random>.tmp" file beside the object it was
//     writing; inside a snapshot folder GC sweeps it with the orphan parts.
//     A file bucket passed to NewLake gets fileblob's own if-not-exists,
//     which checks and then renames: two processes can both "win" there.
//
// # Catalog
//
// Tenants, Snapshots, Latest, Resolve (as of a time), Manifest and OpenPart
// read the lake; they never return uncommitted data.
//
// # Retention
//
// GC deletes whole snapshots (manifest first, then parts) beyond a policy,
// and orphan parts older than a grace period.
package lake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file://
	_ "gocloud.dev/blob/gcsblob"  // gs://
	_ "gocloud.dev/blob/memblob"  // mem://
	"gocloud.dev/gcerrors"

	"github.com/tenantlake/tenantlake/tenant"
)

// Lake is an open staging lake. It is safe for concurrent use.
type Lake struct {
	bucket *blob.Bucket
	url    string // the URL without its query
	gcs    string // "gs://bucket/prefix/" when the lake is on GCS, else ""
	dir    string // the folder of a file:// lake opened with Open, else ""
	// dirMode is the mode for new folders of a file:// lake, fileblob's
	// dir_file_mode (default 0777, less the umask).
	dirMode os.FileMode
}

// Open opens the lake at urlstr: file:///path (created if missing),
// mem:// or gs://bucket/prefix. Credentials come from the environment, never
// from the URL; errors show the URL Redact'ed. Query parameters are passed
// to the gocloud.dev opener.
func Open(ctx context.Context, urlstr string) (*Lake, error) {
	return open(ctx, urlstr, true)
}

// OpenExisting opens a lake as Open does, but never creates one: a file://
// lake whose folder is missing fails with an error wrapping ErrNotFound that
// names the folder, and nothing is created. Commands that only read a lake
// (or delete from it) use it, so a mistyped path is an error, not a new,
// empty lake.
func OpenExisting(ctx context.Context, urlstr string) (*Lake, error) {
	return open(ctx, urlstr, false)
}

func open(ctx context.Context, urlstr string, create bool) (*Lake, error) {
	// urlstr should carry no credentials, but may: never show them.
	urlstr, raw := tenant.Redact(urlstr), urlstr
	u, err := tenant.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("lake: %w: URL %q: %w", ErrInvalid, urlstr, err)
	}
	if u.User != nil {
		return nil, fmt.Errorf("lake: %w: URL %q: must not carry credentials", ErrInvalid, urlstr)
	}
	prefix, dir, dirMode := "", "", os.FileMode(0o777)
	opener := *u
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "." {
			return nil, fmt.Errorf("lake: %w: URL %q: a file URL has no host: file:///path", ErrInvalid, urlstr)
		}
		p := u.Path
		if u.Host == "." || os.PathSeparator != '/' { // as fileblob reads it
			p = strings.TrimPrefix(p, "/")
		}
		if dir, err = filepath.Abs(filepath.FromSlash(p)); err != nil {
			return nil, fmt.Errorf("lake: open %s: %w", urlstr, err)
		}
		q := opener.Query()
		if m := q.Get("dir_file_mode"); m != "" {
			mode, err := strconv.ParseUint(m, 0, 32)
			if err != nil {
				return nil, fmt.Errorf("lake: %w: URL %q: dir_file_mode: %w", ErrInvalid, urlstr, err)
			}
			dirMode = os.FileMode(mode)
		}
		if !create {
			st, err := os.Stat(dir)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return nil, fmt.Errorf("lake: open %s: %w: folder %s does not exist", urlstr, ErrNotFound, dir)
			case err != nil:
				return nil, fmt.Errorf("lake: open %s: %w", urlstr, err)
			case !st.IsDir():
				return nil, fmt.Errorf("lake: open %s: %w: %s is not a folder", urlstr, ErrInvalid, dir)
			}
		} else if !q.Has("create_dir") {
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
	base := *u
	base.RawQuery = ""
	l := &Lake{bucket: b, url: base.String(), dir: dir, dirMode: dirMode}
	if u.Scheme == "gs" {
		l.gcs = "gs://" + u.Host + "/" + prefix
	}
	return l, nil
}

// NewLake wraps an already open bucket. name is the lake's URL, for
// ManifestURL and messages. gcsBase is "gs://bucket/prefix/" when the bucket
// is on GCS (so loads can read parts by URI), else "". Writes go through the
// bucket's own if-not-exists precondition (see the package doc for file
// buckets).
func NewLake(b *blob.Bucket, name, gcsBase string) *Lake {
	return &Lake{bucket: b, url: name, gcs: gcsBase}
}

// URL returns the URL the lake was opened with, without its query.
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

// kind maps a blob or file system error to one of this package's error kinds.
func kind(err error) error {
	switch {
	case errors.Is(err, fs.ErrExist):
		return ErrExists
	case errors.Is(err, fs.ErrNotExist):
		return ErrNotFound
	}
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		return ErrNotFound
	case gcerrors.FailedPrecondition, gcerrors.AlreadyExists:
		return ErrExists
	}
	return nil
}

func wrap(op, key string, err error) error {
	if k := kind(err); k != nil && !errors.Is(err, k) {
		return fmt.Errorf("lake: %s %q: %w: %w", op, key, k, err)
	}
	return fmt.Errorf("lake: %s %q: %w", op, key, err)
}

// create starts writing the write-once object key. The object appears, whole,
// when Close returns nil; Close fails with an error of kind ErrExists if it
// exists by then. If a Write failed, or ctx is cancelled before Close, Close
// fails and nothing is left.
func (l *Lake) create(ctx context.Context, key, contentType string) (*objectWriter, error) {
	ctx, cancel := context.WithCancel(ctx)
	var (
		w   io.WriteCloser
		err error
	)
	if l.dir == "" {
		w, err = l.bucket.NewWriter(ctx, key, &blob.WriterOptions{ContentType: contentType, IfNotExist: true})
	} else {
		w, err = createFile(ctx, filepath.Join(l.dir, filepath.FromSlash(key)), l.dirMode)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	return &objectWriter{w: w, cancel: cancel}, nil
}

// objectWriter aborts the upload, rather than storing a truncated object,
// when a Write has failed.
type objectWriter struct {
	w      io.WriteCloser
	cancel context.CancelFunc
	err    error // the first Write error
}

func (o *objectWriter) Write(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.w.Write(p)
	if err != nil {
		o.err = err
	}
	return n, err
}

func (o *objectWriter) Close() error {
	if o.err != nil {
		o.cancel()
		_ = o.w.Close() // fails: it was cancelled; the write error says why
		return o.err
	}
	err := o.w.Close()
	o.cancel()
	return err
}

// createFile starts writing the file path of a file:// lake.
func createFile(ctx context.Context, path string, dirMode os.FileMode) (*fileWriter, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return nil, err
	}
	for {
		tmp := path + "." + strconv.FormatUint(rand.Uint64(), 36) + ".tmp"
		f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &fileWriter{ctx: ctx, f: f, path: path}, nil
	}
}

// fileWriter writes one object of a file:// lake: to a temporary file beside
// path, then hard-linked to path on Close. link(2) fails if path exists, so
// the if-not-exists check and the write are one atomic step.
type fileWriter struct {
	ctx  context.Context
	f    *os.File
	path string
}

func (w *fileWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func (w *fileWriter) Close() error {
	tmp := w.f.Name()
	err := w.ctx.Err()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, w.path)
	}
	// After a link the object keeps the data under its final name.
	if rerr := os.Remove(tmp); err == nil {
		err = rerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(w.path))
	}
	return err
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
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
// committed. Nothing is written until the first part.
func (l *Lake) NewSnapshot(ctx context.Context, tenant, id string) (*Snapshot, error) {
	if err := validTenant(tenant); err != nil {
		return nil, fmt.Errorf("lake: new snapshot: %w", err)
	}
	if err := validSnapshotID(id); err != nil {
		return nil, fmt.Errorf("lake: new snapshot of %s: %w", tenant, err)
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
	w     *objectWriter
	key   string
	hash  hash.Hash
	bytes int64
	rows  int64
}

// CreatePart creates part n (0 or more) of table in the snapshot,
// write-once. If the part already exists, Close fails with an error wrapping
// ErrExists and the existing part is kept. Cancelling ctx before Close aborts
// the upload: Close fails and nothing is left in the lake.
func (s *Snapshot) CreatePart(ctx context.Context, table string, n int) (*Part, error) {
	if err := validTableName(table); err != nil {
		return nil, fmt.Errorf("lake: create part of %s/%s: %w", s.tenant, s.id, err)
	}
	if n < 0 {
		return nil, fmt.Errorf("lake: create part of %s/%s table %s: %w: part number %d", s.tenant, s.id, table, ErrInvalid, n)
	}
	key := PartKey(s.tenant, s.id, table, n)
	w, err := s.lake.create(ctx, key, "application/vnd.apache.parquet")
	if err != nil {
		return nil, wrap("create part", key, err)
	}
	return &Part{w: w, key: key, hash: sha256.New()}, nil
}

// Write writes b to the part.
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
	return nil
}

// File describes the part for the manifest: key, rows, bytes and SHA-256 of
// what was written. It is meaningful after a successful Close.
func (p *Part) File() File {
	return File{Path: p.key, Rows: p.rows, Bytes: p.bytes, SHA256: hex.EncodeToString(p.hash.Sum(nil))}
}

// Commit writes the manifest, making the snapshot visible. m's tenant and
// snapshot id must be the snapshot's, m must pass Validate (a zero
// FormatVersion is set to FormatVersion), and every file it lists must exist
// with the size it records; otherwise Commit fails with ErrInvalid or
// ErrNotFound and writes nothing. If another writer committed the same
// snapshot first, Commit returns an error wrapping ErrExists and the lake
// keeps the first manifest.
func (s *Snapshot) Commit(ctx context.Context, m *Manifest) error {
	key := ManifestKey(s.tenant, s.id)
	if m.Tenant != s.tenant || m.SnapshotID != s.id {
		return fmt.Errorf("lake: commit %q: %w: manifest is for %s/%s", key, ErrInvalid, m.Tenant, m.SnapshotID)
	}
	if m.FormatVersion == 0 {
		m.FormatVersion = FormatVersion
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("lake: commit %q: %w", key, err)
	}
	for _, t := range m.Tables {
		for _, f := range t.Files {
			attrs, err := s.lake.bucket.Attributes(ctx, f.Path)
			if err != nil {
				return fmt.Errorf("lake: commit %q: %w", key, wrap("check part", f.Path, err))
			}
			if attrs.Size != f.Bytes {
				return fmt.Errorf("lake: commit %q: %w: part %q has %d bytes, manifest says %d", key, ErrInvalid, f.Path, attrs.Size, f.Bytes)
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
	w, err := l.create(ctx, key, contentType)
	if err != nil {
		return wrap("write", key, err)
	}
	_, err = w.Write(data)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
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
// returned PartReader is an io.ReaderAt (for Parquet readers) and io.Reader;
// its reads use ctx. It fails with ErrNotFound if the part is missing and
// ErrCorrupt if its size differs from f.Bytes; Verify also checks the bytes.
func (l *Lake) OpenPart(ctx context.Context, f File) (*PartReader, error) {
	attrs, err := l.bucket.Attributes(ctx, f.Path)
	if err != nil {
		return nil, wrap("open part", f.Path, err)
	}
	if attrs.Size != f.Bytes {
		return nil, fmt.Errorf("lake: open part %q: %w: object has %d bytes, manifest says %d", f.Path, ErrCorrupt, attrs.Size, f.Bytes)
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

// Verify reads the whole part and checks its size and SHA-256 against f. A
// mismatch is ErrCorrupt; a missing part ErrNotFound.
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
		return fmt.Errorf("lake: verify part %q: %w: %d bytes sha256 %s, manifest says %d bytes sha256 %s", f.Path, ErrCorrupt, n, sum, f.Bytes, f.SHA256)
	}
	return nil
}
