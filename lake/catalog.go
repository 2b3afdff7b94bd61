package lake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gocloud.dev/blob"
)

// SnapshotInfo is one committed snapshot in a listing.
type SnapshotInfo struct {
	Tenant     string    `json:"tenant"`
	SnapshotID string    `json:"snapshot_id"`
	Time       time.Time `json:"time"` // the snapshot id as a time
}

// Tenants lists the tenants that have at least one committed snapshot,
// sorted. Folders whose name is not a valid tenant id are ignored, and so
// are tenants with only uncommitted parts (see TenantFolders).
func (l *Lake) Tenants(ctx context.Context) ([]string, error) {
	all, err := l.TenantFolders(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range all {
		ok, err := l.hasCommitted(ctx, t)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// TenantFolders lists every tenant with any object in the lake, committed or
// not, sorted: the tenants GC has work for. Folders whose name is not a valid
// tenant id are ignored.
func (l *Lake) TenantFolders(ctx context.Context) ([]string, error) {
	dirs, err := l.listDirs(ctx, "tenant=")
	if err != nil {
		return nil, fmt.Errorf("lake: list tenants: %w", err)
	}
	var out []string
	for _, t := range dirs {
		if validTenant(t) == nil {
			out = append(out, t)
		}
	}
	return out, nil
}

// hasCommitted reports whether tenant has a committed snapshot, looking at
// the newest snapshot folders first.
func (l *Lake) hasCommitted(ctx context.Context, tenant string) (bool, error) {
	ids, err := l.listDirs(ctx, tenantPrefix(tenant)+"snapshot=")
	if err != nil {
		return false, fmt.Errorf("lake: list snapshots of %s: %w", tenant, err)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	for _, id := range ids {
		if validSnapshotID(id) != nil {
			continue
		}
		ok, err := l.isCommitted(ctx, tenant, id)
		if err != nil {
			return false, err
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// listDirs lists the names that follow prefix up to the next "/", for the
// "folders" directly under prefix.
func (l *Lake) listDirs(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	err := l.list(ctx, &blob.ListOptions{Prefix: prefix, Delimiter: "/"}, func(obj *blob.ListObject) {
		if obj.IsDir {
			out = append(out, strings.TrimSuffix(strings.TrimPrefix(obj.Key, prefix), "/"))
		}
	})
	return out, err
}

// listAttempts bounds how often list starts over.
const listAttempts = 5

// list calls fn for every object that opts lists, after the listing
// succeeded. A file:// bucket fails a listing when a file it has seen
// vanishes before it can stat it (a writer's temporary file, linked into
// place and removed at that moment, or an object GC deletes): list then
// starts over, up to listAttempts times.
func (l *Lake) list(ctx context.Context, opts *blob.ListOptions, fn func(*blob.ListObject)) error {
	var objs []*blob.ListObject
	var err error
	for attempt := 1; ; attempt++ {
		objs, err = l.listOnce(ctx, opts)
		if err == nil || kind(err) != ErrNotFound || attempt == listAttempts || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return err
	}
	for _, o := range objs {
		fn(o)
	}
	return nil
}

func (l *Lake) listOnce(ctx context.Context, opts *blob.ListOptions) ([]*blob.ListObject, error) {
	it := l.bucket.List(opts)
	var out []*blob.ListObject
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, obj)
	}
}

// isCommitted reports whether snapshot id of tenant has a manifest (not
// GC's empty seal).
func (l *Lake) isCommitted(ctx context.Context, tenant, id string) (bool, error) {
	key := ManifestKey(tenant, id)
	attrs, err := l.bucket.Attributes(ctx, key)
	if kind(err) == ErrNotFound {
		return false, nil
	}
	if err != nil {
		return false, wrap("check", key, err)
	}
	return attrs.Size > 0, nil
}

// snapshotObjects lists every object of every snapshot of tenant, grouped by
// snapshot id, and whether each snapshot has a manifest (an empty one is
// GC's seal, not a commit).
func (l *Lake) snapshotObjects(ctx context.Context, tenant string) (map[string][]*blob.ListObject, map[string]bool, error) {
	prefix := tenantPrefix(tenant) + "snapshot="
	objs := map[string][]*blob.ListObject{}
	committed := map[string]bool{}
	err := l.list(ctx, &blob.ListOptions{Prefix: prefix}, func(obj *blob.ListObject) {
		rest := strings.TrimPrefix(obj.Key, prefix)
		id, name, ok := strings.Cut(rest, "/")
		if !ok || validSnapshotID(id) != nil {
			return
		}
		objs[id] = append(objs[id], obj)
		if name == manifestName && obj.Size > 0 {
			committed[id] = true
		}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("lake: list snapshots of %s: %w", tenant, err)
	}
	return objs, committed, nil
}

// Snapshots lists the committed snapshots of tenant, newest first. A tenant
// with no committed snapshot has an empty list, not an error.
func (l *Lake) Snapshots(ctx context.Context, tenant string) ([]SnapshotInfo, error) {
	if err := validTenant(tenant); err != nil {
		return nil, fmt.Errorf("lake: list snapshots: %w", err)
	}
	_, committed, err := l.snapshotObjects(ctx, tenant)
	if err != nil {
		return nil, err
	}
	out := make([]SnapshotInfo, 0, len(committed))
	for id := range committed {
		t, _ := ParseSnapshotID(id)
		out = append(out, SnapshotInfo{Tenant: tenant, SnapshotID: id, Time: t})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SnapshotID > out[j].SnapshotID })
	return out, nil
}

// Latest returns the newest committed snapshot of tenant, or ErrNotFound.
func (l *Lake) Latest(ctx context.Context, tenant string) (SnapshotInfo, error) {
	snaps, err := l.Snapshots(ctx, tenant)
	if err != nil {
		return SnapshotInfo{}, err
	}
	if len(snaps) == 0 {
		return SnapshotInfo{}, fmt.Errorf("lake: tenant %s has no committed snapshot: %w", tenant, ErrNotFound)
	}
	return snaps[0], nil
}

// Resolve returns the newest committed snapshot of tenant whose id is at or
// before asOf (its time zone does not matter). It fails with ErrNotFound when
// there is none.
func (l *Lake) Resolve(ctx context.Context, tenant string, asOf time.Time) (SnapshotInfo, error) {
	if err := validTenant(tenant); err != nil {
		return SnapshotInfo{}, fmt.Errorf("lake: resolve: %w", err)
	}
	// List the snapshot folders only (not their parts), newest first, and
	// look for a manifest from the newest at or before asOf down: with
	// thousands of snapshots this reads one folder listing and, usually,
	// one object's attributes.
	dirs, err := l.snapshotDirs(ctx, tenant)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("lake: resolve in %s: %w", tenant, err)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	bound := SnapshotID(asOf.UTC().Truncate(time.Millisecond))
	var oldest string
	for _, id := range dirs {
		if validSnapshotID(id) != nil {
			continue
		}
		if id > bound {
			continue
		}
		ok, err := l.committed(ctx, tenant, id)
		if err != nil {
			return SnapshotInfo{}, err
		}
		if ok {
			t, _ := ParseSnapshotID(id)
			return SnapshotInfo{Tenant: tenant, SnapshotID: id, Time: t}, nil
		}
	}
	snaps, err := l.Snapshots(ctx, tenant)
	if err != nil {
		return SnapshotInfo{}, err
	}
	if len(snaps) == 0 {
		return SnapshotInfo{}, fmt.Errorf("lake: tenant %s has no committed snapshot: %w", tenant, ErrNotFound)
	}
	oldest = snaps[len(snaps)-1].SnapshotID
	return SnapshotInfo{}, fmt.Errorf("lake: tenant %s has no snapshot at or before %s (oldest is %s): %w",
		tenant, asOf.UTC().Format(time.RFC3339Nano), oldest, ErrNotFound)
}

// SnapshotsSince lists tenant's committed snapshots whose id is at or after
// since, newest first, without listing their parts: what a redelivered read
// request looks through.
func (l *Lake) SnapshotsSince(ctx context.Context, tenant string, since time.Time) ([]SnapshotInfo, error) {
	if err := validTenant(tenant); err != nil {
		return nil, fmt.Errorf("lake: list snapshots: %w", err)
	}
	dirs, err := l.snapshotDirs(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("lake: list snapshots of %s: %w", tenant, err)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	bound := SnapshotID(since.UTC().Truncate(time.Millisecond))
	out := []SnapshotInfo{}
	for _, id := range dirs {
		if validSnapshotID(id) != nil {
			continue
		}
		if id < bound {
			break
		}
		ok, err := l.committed(ctx, tenant, id)
		if err != nil {
			return nil, err
		}
		if ok {
			t, _ := ParseSnapshotID(id)
			out = append(out, SnapshotInfo{Tenant: tenant, SnapshotID: id, Time: t})
		}
	}
	return out, nil
}

// snapshotDirs lists the snapshot ids that have a folder (committed or
// not). On a file:// lake it reads the tenant's folder directly: the bucket's
// listing would open every snapshot folder to find its first file.
func (l *Lake) snapshotDirs(ctx context.Context, tenant string) ([]string, error) {
	const p = "snapshot="
	if l.dir == "" {
		return l.listDirs(ctx, tenantPrefix(tenant)+p)
	}
	entries, err := os.ReadDir(filepath.Join(l.dir, "tenant="+tenant))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), p) {
			out = append(out, strings.TrimPrefix(e.Name(), p))
		}
	}
	return out, nil
}

// committed reports whether snapshot id of tenant has its manifest (a
// sweep's seal, an empty manifest, is not one).
func (l *Lake) committed(ctx context.Context, tenant, id string) (bool, error) {
	attrs, err := l.bucket.Attributes(ctx, ManifestKey(tenant, id))
	if err != nil {
		if kind(err) == ErrNotFound {
			return false, nil
		}
		return false, wrap("stat", ManifestKey(tenant, id), err)
	}
	return attrs.Size > 0, nil
}

// ParseAsOf parses the time of an "as of" question: RFC 3339 with a zone
// ("Z" or an offset such as +02:00), a snapshot id, or a date YYYY-MM-DD,
// which means the end of that day in UTC ("as it was on Tuesday" includes
// all of Tuesday's snapshots). Anything else, including a time without a
// zone, fails with ErrInvalid.
func ParseAsOf(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := ParseSnapshotID(s); err == nil {
		return t, nil
	}
	if d, err := time.Parse("2006-01-02", s); err == nil {
		return d.Add(24*time.Hour - time.Nanosecond), nil
	}
	return time.Time{}, fmt.Errorf("%w: time %q: want RFC 3339 (2026-11-21T02:03:04Z), a date (2026-11-21) or a snapshot id", ErrInvalid, s)
}

// Manifest reads and checks the manifest of a committed snapshot. It fails
// with ErrNotFound if the snapshot is not committed, and ErrInvalid if the
// manifest does not pass Validate or describes another snapshot.
func (l *Lake) Manifest(ctx context.Context, tenant, snapshotID string) (*Manifest, error) {
	if err := validTenant(tenant); err != nil {
		return nil, fmt.Errorf("lake: read manifest: %w", err)
	}
	if err := validSnapshotID(snapshotID); err != nil {
		return nil, fmt.Errorf("lake: read manifest of %s: %w", tenant, err)
	}
	key := ManifestKey(tenant, snapshotID)
	data, err := l.readAll(ctx, key)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("lake: read manifest %q: %w: the snapshot never committed and GC has sealed it to sweep it", key, ErrNotFound)
	}
	m, err := decodeManifest(data)
	if err != nil {
		return nil, fmt.Errorf("lake: read manifest %q: %w", key, err)
	}
	if m.Tenant != tenant || m.SnapshotID != snapshotID {
		return nil, fmt.Errorf("lake: read manifest %q: %w: it describes %s/%s", key, ErrInvalid, m.Tenant, m.SnapshotID)
	}
	return m, nil
}

// ManifestURL returns the URL of a snapshot's manifest, for events.
func (l *Lake) ManifestURL(tenant, snapshotID string) string {
	key := ManifestKey(tenant, snapshotID)
	if uri, ok := l.GCSURI(key); ok {
		return uri
	}
	return strings.TrimSuffix(l.url, "/") + "/" + key
}

func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ValidateTarget returns an error matching ErrInvalid unless name can be a
// target in the ledger's keys ([A-Za-z_][A-Za-z0-9_]*, at most 300 bytes):
// write strategies check their target name with it when they are opened,
// before anything is written.
func ValidateTarget(name string) error { return validName("target", name) }

// WriteLedger stores one load record (any JSON value) for tenant and target,
// write-once, under tenant=<t>/_loads/target=<target>/<snapshot-id>.<load-id>.json.
// target and loadID are names ([A-Za-z_][A-Za-z0-9_]*); a record already
// stored under the same key fails with ErrExists.
func (l *Lake) WriteLedger(ctx context.Context, tenant, target, snapshotID, loadID string, record any) error {
	if err := validTenant(tenant); err != nil {
		return fmt.Errorf("lake: write ledger: %w", err)
	}
	if err := validName("target", target); err != nil {
		return fmt.Errorf("lake: write ledger of %s: %w", tenant, err)
	}
	if err := validSnapshotID(snapshotID); err != nil {
		return fmt.Errorf("lake: write ledger of %s: %w", tenant, err)
	}
	if err := validName("load id", loadID); err != nil {
		return fmt.Errorf("lake: write ledger of %s: %w", tenant, err)
	}
	data, err := encodeJSON(record)
	if err != nil {
		return fmt.Errorf("lake: write ledger of %s: %w", tenant, err)
	}
	return l.writeOnce(ctx, ledgerPrefix(tenant, target)+snapshotID+"."+loadID+ledgerExt, "application/json", data)
}

const ledgerExt = ".json"

// Ledger returns the raw load records of tenant and target, ordered by
// snapshot id and then load id (not by when they were written: a replay of an
// older snapshot sorts before newer snapshots). A target with no records has
// an empty list.
func (l *Lake) Ledger(ctx context.Context, tenant, target string) ([]json.RawMessage, error) {
	if err := validTenant(tenant); err != nil {
		return nil, fmt.Errorf("lake: read ledger: %w", err)
	}
	if err := validName("target", target); err != nil {
		return nil, fmt.Errorf("lake: read ledger of %s: %w", tenant, err)
	}
	return l.ledger(ctx, ledgerPrefix(tenant, target))
}

// ledger reads the ledger records whose keys start with prefix, by key.
func (l *Lake) ledger(ctx context.Context, prefix string) ([]json.RawMessage, error) {
	var keys []string
	err := l.list(ctx, &blob.ListOptions{Prefix: prefix}, func(obj *blob.ListObject) {
		if strings.HasSuffix(obj.Key, ledgerExt) { // not a crashed writer's temporary file
			keys = append(keys, obj.Key)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("lake: read ledger %s: %w", prefix, err)
	}
	sort.Strings(keys)
	out := make([]json.RawMessage, 0, len(keys))
	for _, k := range keys {
		data, err := l.readAll(ctx, k)
		if err != nil {
			return nil, err
		}
		out = append(out, data)
	}
	return out, nil
}
