// Package laketest holds the lake conformance suite (Run) and the lakes it
// runs against: a temporary folder (File), memory (Mem) and GCS through an
// in-process fake-gcs-server (GCS). Other packages' tests use the fixtures
// and WriteSnapshot to get a lake with committed snapshots in it.
//
// The parts WriteSnapshot writes are a few deterministic bytes, not Parquet:
// enough for the catalog, commit protocol and retention, which never look
// inside a part.
package laketest

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"gocloud.dev/blob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcp"
	"google.golang.org/api/option"

	"github.com/tenantlake/tenantlake/lake"
)

// Fixture is one empty lake on one backend.
type Fixture struct {
	Lake *lake.Lake
	// Other opens a second Lake on the same storage, as another process
	// would: a separate bucket handle (and for gs:// a separate client).
	Other func(t *testing.T) *lake.Lake
	// Keys lists every object in the whole bucket (for file://, every file
	// under the folder that holds the lake folder), sorted; the lake's own
	// objects start with Root. Anything else escaped the lake.
	Keys func(t *testing.T) []string
	// Root is the prefix of the lake's keys in Keys: "lake/" for file:// and
	// gs://, "" for mem://, whose lake is the whole bucket.
	Root string
	// Overwrite replaces the object at lake key with data behind the
	// lake's back, as a disk fault or a stray tool would.
	Overwrite func(t *testing.T, key string, data []byte)
	// Dir is the folder of a file:// lake, else "".
	Dir string
	// Requests returns the GCS JSON API requests the fake server has
	// received, for gs://; nil for other backends.
	Requests func() []Request
}

// Request is one HTTP request received by the fake GCS server.
type Request struct {
	Method string
	Path   string // URL path, e.g. /upload/storage/v1/b/lake-bucket/o
	Query  map[string][]string
}

// File returns a file:// lake, opened with lake.Open, in the folder "lake"
// of a temporary folder.
func File(t *testing.T) Fixture {
	t.Helper()
	top := t.TempDir()
	dir := filepath.Join(top, "lake")
	url := "file://" + filepath.ToSlash(dir)
	open := func(t *testing.T) *lake.Lake {
		t.Helper()
		lk, err := lake.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeLake(t, lk) })
		return lk
	}
	return Fixture{
		Lake:  open(t),
		Other: open,
		Dir:   dir,
		Root:  "lake/",
		Overwrite: func(t *testing.T, key string, data []byte) {
			t.Helper()
			if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(key)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
		Keys: func(t *testing.T) []string {
			t.Helper()
			var keys []string
			err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, err := filepath.Rel(top, path)
				keys = append(keys, filepath.ToSlash(rel))
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(keys)
			return keys
		},
	}
}

// Mem returns a mem:// lake: a whole memblob bucket. Other shares the
// bucket, as memblob cannot be shared between processes.
func Mem(t *testing.T) Fixture {
	t.Helper()
	b := memblob.OpenBucket(nil)
	t.Cleanup(func() { closeBucket(t, b) })
	open := func(*testing.T) *lake.Lake { return lake.NewLake(b, "mem://", "") }
	return Fixture{
		Lake:      open(t),
		Other:     open,
		Keys:      func(t *testing.T) []string { return listAll(t, b) },
		Overwrite: func(t *testing.T, key string, data []byte) { overwrite(t, b, key, data) },
	}
}

// Bucket is the bucket GCS creates in its fake server.
const Bucket = "lake-bucket"

// GCS returns a gs://lake-bucket/lake/ lake on gocloud.dev's gcsblob driver
// with the official storage client, talking HTTP to an in-process
// fake-gcs-server that records every request it receives.
func GCS(t *testing.T) Fixture {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: Bucket})
	rec := &recorder{next: srv.HTTPHandler()}
	hs := httptest.NewServer(rec)
	t.Cleanup(hs.Close)
	openBucket := func(t *testing.T) *blob.Bucket {
		t.Helper()
		b, err := gcsblob.OpenBucket(context.Background(), gcp.NewAnonymousHTTPClient(http.DefaultTransport), Bucket, &gcsblob.Options{
			ClientOptions: []option.ClientOption{option.WithEndpoint(hs.URL + "/storage/v1/"), storage.WithJSONReads()},
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const root = "lake/"
	base := "gs://" + Bucket + "/" + root
	open := func(t *testing.T) *lake.Lake {
		// PrefixedBucket takes over the bucket; closing the lake closes it.
		lk := lake.NewLake(blob.PrefixedBucket(openBucket(t), root), base, base)
		t.Cleanup(func() { closeLake(t, lk) })
		return lk
	}
	whole := openBucket(t)
	t.Cleanup(func() { closeBucket(t, whole) })
	return Fixture{
		Lake:      open(t),
		Other:     open,
		Keys:      func(t *testing.T) []string { return listAll(t, whole) },
		Overwrite: func(t *testing.T, key string, data []byte) { overwrite(t, whole, root+key, data) },
		Root:      root,
		Requests:  rec.requests,
	}
}

type recorder struct {
	next http.Handler
	mu   sync.Mutex
	reqs []Request
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.reqs = append(r.reqs, Request{Method: req.Method, Path: req.URL.Path, Query: req.URL.Query()})
	r.mu.Unlock()
	r.next.ServeHTTP(w, req)
}

func (r *recorder) requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

func listAll(t *testing.T, b *blob.Bucket) []string {
	t.Helper()
	var keys []string
	it := b.List(nil)
	for {
		obj, err := it.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, obj.Key)
	}
	sort.Strings(keys)
	return keys
}

func overwrite(t *testing.T, b *blob.Bucket, key string, data []byte) {
	t.Helper()
	if err := b.WriteAll(context.Background(), key, data, nil); err != nil {
		t.Fatal(err)
	}
}

func closeLake(t *testing.T, lk *lake.Lake) {
	if err := lk.Close(); err != nil {
		t.Errorf("close lake: %v", err)
	}
}

func closeBucket(t *testing.T, b *blob.Bucket) {
	if err := b.Close(); err != nil {
		t.Errorf("close bucket: %v", err)
	}
}
