// Command benchasof times "as of T" resolution (lake.Resolve, what Replay
// and `load --at` call) among many committed snapshots of one tenant, on a
// file lake and on an in-process fake GCS (fake-gcs-server behind the
// official storage client, as in the lake's conformance suite). Part of
// `make bench` (scripts/bench.sh).
//
//	go run ./scripts/benchasof [-snapshots 10000] [-rounds 5]
//
// It writes the snapshots once per lake through the lake's own commit path
// (a claim, then the manifest), then resolves a time near the oldest end
// (the worst case: the newest snapshot at or before it is far down the list)
// -rounds times and prints the median, against the 100 ms target.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"gocloud.dev/blob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/gcp"
	"google.golang.org/api/option"

	"github.com/tenantlake/tenantlake/lake"
)

func main() {
	n := flag.Int("snapshots", 10000, "committed snapshots of the tenant")
	rounds := flag.Int("rounds", 5, "resolutions timed per lake")
	flag.Parse()
	if err := run(*n, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "benchasof:", err)
		os.Exit(1)
	}
}

func run(n, rounds int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "benchasof-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fileLake, err := lake.Open(ctx, "file://"+dir)
	if err != nil {
		return err
	}
	defer fileLake.Close()

	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true})
	if err != nil {
		return err
	}
	defer srv.Stop()
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "lake-bucket"})
	hs := httptest.NewServer(srv.HTTPHandler())
	defer hs.Close()
	b, err := gcsblob.OpenBucket(ctx, gcp.NewAnonymousHTTPClient(http.DefaultTransport), "lake-bucket", &gcsblob.Options{
		ClientOptions: []option.ClientOption{option.WithEndpoint(hs.URL + "/storage/v1/"), storage.WithJSONReads()},
	})
	if err != nil {
		return err
	}
	gcsLake := lake.NewLake(blob.PrefixedBucket(b, "lake/"), "gs://lake-bucket/lake/", "gs://lake-bucket/lake/")
	defer gcsLake.Close()

	fmt.Printf("as-of resolution among %d committed snapshots of one tenant, %d rounds each\n", n, rounds)
	failed := false
	for _, l := range []struct {
		name string
		lk   *lake.Lake
	}{{"file lake", fileLake}, {"in-process GCS fake", gcsLake}} {
		start := time.Now()
		first, err := fill(ctx, l.lk, n)
		if err != nil {
			return fmt.Errorf("%s: %w", l.name, err)
		}
		fmt.Printf("  %-20s wrote %d snapshots in %s\n", l.name, n, time.Since(start).Round(time.Millisecond))
		asOf := first.Add(90 * time.Second) // the snapshot one minute after the first
		var times []time.Duration
		for range rounds {
			t0 := time.Now()
			s, err := l.lk.Resolve(ctx, "acme", asOf)
			times = append(times, time.Since(t0))
			if err != nil {
				return fmt.Errorf("%s: resolve: %w", l.name, err)
			}
			if want := lake.SnapshotID(first.Add(time.Minute)); s.SnapshotID != want {
				return fmt.Errorf("%s: resolved %s, want %s", l.name, s.SnapshotID, want)
			}
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		med := times[len(times)/2]
		verdict := "met"
		if med > 100*time.Millisecond {
			verdict, failed = "missed", true
		}
		fmt.Printf("  %-20s resolve median %8.1f ms   target <= 100 ms   %s\n", l.name, float64(med.Microseconds())/1000, verdict)
	}
	if failed {
		fmt.Println("as-of target missed")
	}
	return nil
}

// fill commits n empty snapshots of tenant acme, one a minute, through the
// lake's commit path, and returns the first's time.
func fill(ctx context.Context, lk *lake.Lake, n int) (time.Time, error) {
	first := time.Date(2025, 1, 1, 2, 0, 0, 0, time.UTC)
	sem := make(chan struct{}, 16)
	errs := make(chan error, n)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			at := first.Add(time.Duration(i) * time.Minute)
			clk := lk.WithClock(func() time.Time { return at.Add(time.Second) })
			s, err := clk.NewSnapshot(ctx, "acme", lake.SnapshotID(at))
			if err == nil {
				err = s.Commit(ctx, &lake.Manifest{
					FormatVersion: lake.FormatVersion, Tenant: "acme", SnapshotID: lake.SnapshotID(at),
					Source: lake.Source{Kind: "postgres"}, StartedAt: at, CommittedAt: at.Add(time.Second), ToolVersion: "benchasof",
				})
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			return first, err
		}
	}
	return first, nil
}
