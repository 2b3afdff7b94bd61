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
// A read strategy claims a snapshot id with Lake.NewSnapshot, which writes
// the snapshot's _claim.json first, writes its parts with
// Snapshot.CreatePart, and commits it with Snapshot.Commit, which writes
// _manifest.json last. Every object is written once, with an if-not-exists
// precondition; nothing is ever rewritten. Exactly one NewSnapshot of a
// tenant and snapshot id wins the claim; every other fails with ErrExists
// before it has written anything ("another read of tenant T took snapshot id
// S"), so two reads can never mix their parts in one snapshot. A snapshot
// exists only once its manifest exists: parts without a manifest (a crashed
// read) are invisible to the catalog and swept by GC. Should two writers
// commit the same snapshot id all the same, exactly one wins and the other
// gets ErrExists:
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
//     writing; inside a snapshot folder GC sweeps it with the orphan parts
//     (or with the snapshot, when retention deletes it).
//     A file bucket passed to NewLake gets fileblob's own if-not-exists,
//     which checks and then renames: two processes can both "win" there.
//
// A read has MaxReadDuration, measured from its snapshot id's own time (the
// start of the source transaction), to commit: NewSnapshot and Commit refuse
// with ErrExpired once the id is that old, and Commit then writes nothing.
// GC sweeps the objects of an uncommitted snapshot only once its id is older
// than the orphan grace, which is at least MinOrphanGrace > MaxReadDuration,
// so it never disturbs a read that may still commit. And before it deletes
// anything it seals the snapshot: it writes an empty _manifest.json with
// the same if-not-exists precondition as a commit. Either the seal or the
// manifest is written, never both: a commit that loses gets ErrExpired, a
// sweep that loses finds a manifest and deletes nothing. So a committed
// snapshot's parts can never be swept, whatever the timing and whatever the
// clocks say. The catalog treats an empty manifest as no manifest; GC
// deletes the seal itself last, once the id is older than the grace plus
// SealKeep (a week), long after any commit could still be under way.
//
// # Checksums
//
// The manifest records every part's size, SHA-256 and CRC-32C, computed
// while the part was written. OpenPart and StreamPart check a part against
// them before (OpenPart) or as (StreamPart) its bytes are used, and
// CheckStored compares GCS's stored CRC-32C without reading the part; a
// mismatch is ErrCorrupt naming the part.
//
// # Catalog
//
// Tenants, Snapshots, Latest, Resolve (as of a time), Manifest and OpenPart
// read the lake; they never return uncommitted data.
//
// # Retention
//
// GC deletes whole snapshots (manifest first, then parts, then the claim)
// beyond a policy, never the newest one nor one that a target's newest
// ledger record says is live (unless forced), and sweeps the objects of
// uncommitted snapshots whose ids are older than the orphan grace (at least
// MinOrphanGrace).
package lake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/storage"
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
	now     func() time.Time // the clock; nil: time.Now
	view    bool             // made by WithClock: Close leaves the bucket open
}

// WithClock returns a Lake on the same bucket whose NewSnapshot and Commit
// read the time from now instead of the system clock, for tests that need a
// read to take longer than they can wait. Closing the returned Lake does
// nothing; close l.
func (l *Lake) WithClock(now func() time.Time) *Lake {
	c := *l
	c.now, c.view = now, true
	return &c
}

func (l *Lake) clock() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
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

// Close closes the lake's bucket (for a Lake made by WithClock: nothing).
func (l *Lake) Close() error {
	if l.view {
		return nil
	}
	return l.bucket.Close()
}

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
	start  time.Time // the id as a time
}

// claim is the content of a snapshot's _claim.json.
type claim struct {
	Tenant     string    `json:"tenant"`
	SnapshotID string    `json:"snapshot_id"`
	ClaimedAt  time.Time `json:"claimed_at"`
}

// NewSnapshot claims snapshot id of tenant for one read, by writing the
// snapshot's _claim.json write-once, and returns the Snapshot to write it
// with. It fails with ErrInvalid for a bad tenant or snapshot id; with
// ErrExpired if the id is already MaxReadDuration old by the lake's clock
// (the read could not commit it); and with ErrExists, writing nothing, if
// another read took the id first (or the snapshot is committed): the caller
// may try the next millisecond.
func (l *Lake) NewSnapshot(ctx context.Context, tenant, id string) (*Snapshot, error) {
	if err := validTenant(tenant); err != nil {
		return nil, fmt.Errorf("lake: new snapshot: %w", err)
	}
	start, err := ParseSnapshotID(id)
	if err != nil {
		return nil, fmt.Errorf("lake: new snapshot of %s: %w", tenant, err)
	}
	s := &Snapshot{lake: l, tenant: tenant, id: id, start: start}
	if err := s.checkAge("new snapshot"); err != nil {
		return nil, err
	}
	taken := func() error {
		return fmt.Errorf("lake: new snapshot %s/%s: %w: another read of tenant %s took snapshot id %s", tenant, id, ErrExists, tenant, id)
	}
	// A snapshot committed before claims were written has no claim.
	key := ManifestKey(tenant, id)
	ok, err := l.bucket.Exists(ctx, key)
	if err != nil {
		return nil, wrap("check", key, err)
	}
	if ok { // committed, or sealed by GC
		return nil, taken()
	}
	data, err := encodeJSON(claim{Tenant: tenant, SnapshotID: id, ClaimedAt: l.clock().UTC()})
	if err != nil {
		return nil, fmt.Errorf("lake: new snapshot %s/%s: %w", tenant, id, err)
	}
	if err := l.writeOnce(ctx, ClaimKey(tenant, id), "application/json", data); err != nil {
		if errors.Is(err, ErrExists) {
			return nil, taken()
		}
		if aerr := s.checkAge("new snapshot"); aerr != nil {
			return nil, errors.Join(aerr, err) // GC may be sweeping the id
		}
		return nil, fmt.Errorf("lake: new snapshot: %w", err)
	}
	// Checked again: had the claim taken so long that GC could have swept
	// an earlier claim of this id, this one must not be used either.
	if err := s.checkAge("new snapshot"); err != nil {
		return nil, err
	}
	return s, nil
}

// claimAttempts bounds how many milliseconds ClaimSnapshot tries.
const claimAttempts = 1000

// ClaimSnapshot is NewSnapshot for a read whose source transaction started
// at start: it claims SnapshotID(start), or, when another read of the tenant
// took that id (ErrExists), the next free millisecond after it, so two reads
// that start in the same millisecond both get a snapshot. The id it got is
// the Snapshot's ID. Other errors are NewSnapshot's; after 1000 taken
// milliseconds it gives up with ErrExists.
func (l *Lake) ClaimSnapshot(ctx context.Context, tenant string, start time.Time) (*Snapshot, error) {
	t := start.UTC().Truncate(time.Millisecond)
	var err error
	for range claimAttempts {
		var s *Snapshot
		if s, err = l.NewSnapshot(ctx, tenant, SnapshotID(t)); !errors.Is(err, ErrExists) {
			return s, err
		}
		t = t.Add(time.Millisecond)
	}
	return nil, err
}

// checkAge fails with ErrExpired once the snapshot's id is MaxReadDuration
// old by the lake's clock.
func (s *Snapshot) checkAge(op string) error {
	if age := s.lake.clock().Sub(s.start); age >= MaxReadDuration {
		return fmt.Errorf("lake: %s %s/%s: %w: the snapshot id is %s old, and a read must commit within %s (lake.MaxReadDuration) of its id; nothing was committed, and what the read wrote is left for GC",
			op, s.tenant, s.id, ErrExpired, age.Round(time.Second), MaxReadDuration)
	}
	return nil
}

// Tenant returns the snapshot's tenant id.
func (s *Snapshot) Tenant() string { return s.tenant }

// ID returns the snapshot id.
func (s *Snapshot) ID() string { return s.id }

// Part is one Parquet part being written. Write to it, then Close it and
// check the error: the upload completes (or fails) in Close. File then
// describes what was written.
type Part struct {
	snap  *Snapshot
	w     *objectWriter
	key   string
	hash  hash.Hash
	crc   hash.Hash32
	bytes int64
	rows  int64
}

// CreatePart creates part n (0 or more) of table in the snapshot,
// write-once. If the part already exists, Close fails with an error wrapping
// ErrExists and the existing part is kept. Cancelling ctx before Close aborts
// the upload: Close fails and nothing is left in the lake. Once the snapshot
// id is MaxReadDuration old, CreatePart fails with ErrExpired: the read
// could not commit it any more.
func (s *Snapshot) CreatePart(ctx context.Context, table string, n int) (*Part, error) {
	if err := validTableName(table); err != nil {
		return nil, fmt.Errorf("lake: create part of %s/%s: %w", s.tenant, s.id, err)
	}
	if n < 0 {
		return nil, fmt.Errorf("lake: create part of %s/%s table %s: %w: part number %d", s.tenant, s.id, table, ErrInvalid, n)
	}
	if err := s.checkAge("create part"); err != nil {
		return nil, err
	}
	key := PartKey(s.tenant, s.id, table, n)
	w, err := s.lake.create(ctx, key, "application/vnd.apache.parquet")
	if err != nil {
		return nil, wrap("create part", key, err)
	}
	return &Part{snap: s, w: w, key: key, hash: sha256.New(), crc: crc32.New(castagnoli)}, nil
}

// Write writes b to the part.
func (p *Part) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.hash.Write(b[:n])
	p.crc.Write(b[:n])
	p.bytes += int64(n)
	if err != nil {
		return n, wrap("write part", p.key, err)
	}
	return n, nil
}

// SetRows records how many rows the part holds, for File.
func (p *Part) SetRows(n int64) { p.rows = n }

// Close finishes the upload. A nil error means the part is durably stored.
// When the upload fails and the snapshot id has expired meanwhile (GC may
// have swept the snapshot's folder under it), the error wraps ErrExpired
// too.
func (p *Part) Close() error {
	if err := p.w.Close(); err != nil {
		err = wrap("write part", p.key, err)
		if aerr := p.snap.checkAge("write part"); aerr != nil {
			return errors.Join(aerr, err)
		}
		return err
	}
	return nil
}

// File describes the part for the manifest: key, rows, bytes, SHA-256 and
// CRC-32C of what was written. It is meaningful after a successful Close.
func (p *Part) File() File {
	return File{Path: p.key, Rows: p.rows, Bytes: p.bytes, SHA256: hex.EncodeToString(p.hash.Sum(nil)), CRC32C: crcHex(p.crc.Sum32())}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crcHex(c uint32) string { return fmt.Sprintf("%08x", c) }

// Commit writes the manifest, making the snapshot visible. m's tenant and
// snapshot id must be the snapshot's, m must pass Validate (a zero
// FormatVersion is set to FormatVersion), and every file it lists must exist
// with the size it records; otherwise Commit fails with ErrInvalid or
// ErrNotFound and writes nothing. Once the snapshot id is MaxReadDuration
// old by the lake's clock, checked right before the manifest is written,
// Commit fails with ErrExpired and writes nothing: GC may sweep the
// snapshot's parts from MinOrphanGrace on. If another writer committed the
// same snapshot first, Commit returns an error wrapping ErrExists and the
// lake keeps the first manifest.
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
	if err := s.checkAge("commit"); err != nil {
		return err
	}
	for _, t := range m.Tables {
		for _, f := range t.Files {
			attrs, err := s.lake.bucket.Attributes(ctx, f.Path)
			if err != nil {
				if aerr := s.checkAge("commit"); aerr != nil {
					return aerr // GC may have swept the part since
				}
				if serr := s.sealed(ctx); serr != nil {
					return serr
				}
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
	// Last, as late as it can be: the time left until MinOrphanGrace
	// (MinOrphanGrace - MaxReadDuration) is what the manifest's upload may
	// take.
	if err := s.checkAge("commit"); err != nil {
		return err
	}
	if err := s.lake.writeOnce(ctx, key, "application/json", data); err != nil {
		if errors.Is(err, ErrExists) {
			if serr := s.sealed(ctx); serr != nil {
				return serr
			}
		}
		return fmt.Errorf("lake: commit: %w", err)
	}
	return nil
}

// sealed returns an ErrExpired error if GC has sealed the snapshot (its
// manifest is GC's empty seal), else nil.
func (s *Snapshot) sealed(ctx context.Context) error {
	attrs, err := s.lake.bucket.Attributes(ctx, ManifestKey(s.tenant, s.id))
	if err != nil || attrs.Size > 0 {
		return nil
	}
	return fmt.Errorf("lake: commit %s/%s: %w: GC sealed the snapshot to sweep it, its id being older than the orphan grace by GC's clock; nothing was committed", s.tenant, s.id, ErrExpired)
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

// OpenPart opens a part listed in a committed manifest for reading, after
// checking all of it against f: it reads the whole part once, in one
// sequential pass, through SHA-256, and fails with ErrCorrupt naming the
// part if its size or checksum differs from f (ErrNotFound if it is
// missing). Only then does it return the PartReader, an io.ReaderAt (for
// Parquet readers) and io.Reader, whose reads use ctx and return the bytes
// that were checked: a file:// lake opened with Open reads the one open
// file, a gs:// lake the checked generation of the object.
//
// Verifying first, rather than hashing while a Parquet reader consumes the
// part, is deliberate: a Parquet reader reads the footer first and then
// column chunks out of order (so the bytes it reads are no single
// sequential stream to hash), and a corrupt footer must never be parsed at
// all (it could make the reader fail with a misleading error, or allocate
// without bound); nor may a corrupt part's rows be staged. The price is a
// second read of each part, sequential and usually from the page cache.
// The caller must Close the PartReader.
func (l *Lake) OpenPart(ctx context.Context, f File) (*PartReader, error) {
	if err := validPartKey(f.Path); err != nil {
		return nil, fmt.Errorf("lake: open part: %w", err)
	}
	if l.dir != "" {
		return l.openFilePart(f)
	}
	attrs, err := l.bucket.Attributes(ctx, f.Path)
	if err != nil {
		return nil, wrap("open part", f.Path, err)
	}
	if attrs.Size != f.Bytes {
		return nil, sizeMismatch("open part", f, attrs.Size)
	}
	r := &PartReader{ctx: ctx, b: l.bucket, key: f.Path, size: attrs.Size}
	var oa storage.ObjectAttrs
	if attrs.As(&oa) {
		r.generation = oa.Generation
	}
	if err := r.check(f); err != nil {
		return nil, err
	}
	return r, nil
}

// openFilePart opens and checks a part of a file:// lake opened with Open.
func (l *Lake) openFilePart(f File) (*PartReader, error) {
	fh, err := os.Open(filepath.Join(l.dir, filepath.FromSlash(f.Path)))
	if err != nil {
		return nil, wrap("open part", f.Path, err)
	}
	r := &PartReader{file: fh, key: f.Path}
	st, err := fh.Stat()
	if err == nil {
		r.size = st.Size()
		if r.size != f.Bytes {
			err = sizeMismatch("open part", f, r.size)
		} else {
			err = r.check(f)
		}
	}
	if err != nil {
		return nil, errors.Join(err, fh.Close())
	}
	return r, nil
}

func sizeMismatch(op string, f File, size int64) error {
	return fmt.Errorf("lake: %s %q: %w: object has %d bytes, manifest says %d", op, f.Path, ErrCorrupt, size, f.Bytes)
}

// check reads the whole part, sequentially, through SHA-256 and compares it
// with f.
func (r *PartReader) check(f File) error {
	h := sha256.New()
	var (
		n   int64
		err error
	)
	if r.file != nil {
		n, err = io.Copy(h, io.NewSectionReader(r.file, 0, r.size))
	} else {
		var rr *blob.Reader
		if rr, err = r.b.NewRangeReader(r.ctx, r.key, 0, -1, r.readerOptions()); err == nil {
			n, err = io.Copy(h, rr)
			if cerr := rr.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil {
		return wrap("verify part", f.Path, err)
	}
	return compareSum("verify part", f, n, hex.EncodeToString(h.Sum(nil)))
}

func compareSum(op string, f File, n int64, sum string) error {
	if n != f.Bytes || sum != f.SHA256 {
		return fmt.Errorf("lake: %s %q: %w: %d bytes sha256 %s, manifest says %d bytes sha256 %s", op, f.Path, ErrCorrupt, n, sum, f.Bytes, f.SHA256)
	}
	return nil
}

// PartReader reads one part that OpenPart has checked.
type PartReader struct {
	ctx        context.Context
	b          *blob.Bucket
	file       *os.File // a file:// lake's part, read through its descriptor
	generation int64    // GCS: the generation that was checked; 0: none
	key        string
	size       int64
	off        int64
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
	var (
		got int
		err error
	)
	if r.file != nil {
		got, err = r.file.ReadAt(p[:n], off)
	} else {
		got, err = r.readRange(p[:n], off)
	}
	if err != nil && !(errors.Is(err, io.EOF) && int64(got) == n) {
		return got, wrap("read part", r.key, err)
	}
	if got < len(p) {
		return got, io.EOF
	}
	return got, nil
}

// readerOptions pins reads to the checked generation of a GCS object.
func (r *PartReader) readerOptions() *blob.ReaderOptions {
	if r.generation == 0 {
		return nil
	}
	gen := r.generation
	return &blob.ReaderOptions{BeforeRead: func(as func(any) bool) error {
		var oh **storage.ObjectHandle
		if as(&oh) {
			*oh = (*oh).Generation(gen)
		}
		return nil
	}}
}

func (r *PartReader) readRange(p []byte, off int64) (int, error) {
	rr, err := r.b.NewRangeReader(r.ctx, r.key, off, int64(len(p)), r.readerOptions())
	if err != nil {
		return 0, err
	}
	got, err := io.ReadFull(rr, p)
	if cerr := rr.Close(); err == nil {
		err = cerr
	}
	return got, err
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

// Close releases the part's file, for a file:// lake; otherwise nothing.
func (r *PartReader) Close() error {
	if r.file == nil {
		return nil
	}
	if err := r.file.Close(); err != nil {
		return wrap("close part", r.key, err)
	}
	return nil
}

// StreamPart opens a part listed in a committed manifest for one
// sequential read, checking it as it streams: the bytes pass through
// SHA-256, and the Read that reaches the end returns an error wrapping
// ErrCorrupt instead of io.EOF when the size or checksum differs from f. A
// consumer that acts only on a complete stream (an upload, which is
// finalised only at io.EOF) therefore never acts on a corrupt part. A part
// whose size already differs fails here with ErrCorrupt, a missing one with
// ErrNotFound. The caller must Close it.
func (l *Lake) StreamPart(ctx context.Context, f File) (io.ReadCloser, error) {
	if err := validPartKey(f.Path); err != nil {
		return nil, fmt.Errorf("lake: stream part: %w", err)
	}
	rd, err := l.bucket.NewReader(ctx, f.Path, nil)
	if err != nil {
		return nil, wrap("stream part", f.Path, err)
	}
	if rd.Size() != f.Bytes {
		err := sizeMismatch("stream part", f, rd.Size())
		return nil, errors.Join(err, rd.Close())
	}
	return &partStream{rd: rd, f: f, h: sha256.New()}, nil
}

type partStream struct {
	rd  *blob.Reader
	f   File
	h   hash.Hash
	n   int64
	err error // sticky: the end of a checked stream, or why it stopped
}

func (s *partStream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.rd.Read(p)
	s.h.Write(p[:n])
	s.n += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		if cerr := compareSum("stream part", s.f, s.n, hex.EncodeToString(s.h.Sum(nil))); cerr != nil {
			err = cerr
		}
		s.err = err
	case err != nil:
		err = wrap("stream part", s.f.Path, err)
		s.err = err
	case s.n > s.f.Bytes:
		err = fmt.Errorf("lake: stream part %q: %w: more than the %d bytes the manifest says", s.f.Path, ErrCorrupt, s.f.Bytes)
		s.err = err
	}
	return n, err
}

func (s *partStream) Close() error {
	if err := s.rd.Close(); err != nil {
		return wrap("stream part", s.f.Path, err)
	}
	return nil
}

// Verify reads the whole part and checks its size and SHA-256 against f. A
// mismatch is ErrCorrupt; a missing part ErrNotFound.
func (l *Lake) Verify(ctx context.Context, f File) error {
	if err := validPartKey(f.Path); err != nil {
		return fmt.Errorf("lake: verify part: %w", err)
	}
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
	return compareSum("verify part", f, n, hex.EncodeToString(h.Sum(nil)))
}

// CheckStored checks a part that another service will read by its gs://
// URI (a BigQuery load job), without reading its bytes: the object's size
// and the CRC-32C that GCS stores for it must equal f's, which the lake
// recorded while writing the part. A mismatch is ErrCorrupt naming the part;
// a missing part ErrNotFound. Where there is no stored CRC-32C to compare
// (a lake not on GCS) or no recorded one (a manifest written before
// CRC-32C were recorded), it reads the part and checks its SHA-256 (Verify)
// instead: a part is never passed on unchecked.
//
// The check is of the object as it is now; a load job reads it later, by
// name. Parts are write-once, so only a write behind the lake's back in
// between could change it.
func (l *Lake) CheckStored(ctx context.Context, f File) error {
	if err := validPartKey(f.Path); err != nil {
		return fmt.Errorf("lake: check part: %w", err)
	}
	if l.gcs == "" || f.CRC32C == "" {
		return l.Verify(ctx, f)
	}
	attrs, err := l.bucket.Attributes(ctx, f.Path)
	if err != nil {
		return wrap("check part", f.Path, err)
	}
	if attrs.Size != f.Bytes {
		return sizeMismatch("check part", f, attrs.Size)
	}
	var oa storage.ObjectAttrs
	if !attrs.As(&oa) {
		return l.Verify(ctx, f)
	}
	if got := crcHex(oa.CRC32C); got != f.CRC32C {
		return fmt.Errorf("lake: check part %q: %w: GCS stores crc32c %s, manifest says %s", f.Path, ErrCorrupt, got, f.CRC32C)
	}
	return nil
}
