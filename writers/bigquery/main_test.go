package bigquery

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/tenantlake/tenantlake/internal/pgtest"
)

// The emulator tests run against three real parts: the BigQuery emulator
// command (goccy/bigquery-emulator, built by scripts/bigquery-emulator.sh
// into .cache/bin; one per test), an in-process fake-gcs-server that the
// emulator reads gs:// lake parts from (STORAGE_EMULATOR_HOST, also
// honoured by the lake's gs:// opener), and a throwaway PostgreSQL
// (internal/pgtest) that the reader snapshots from.

const (
	emuProject = "tenantlake-test"
	lakeBucket = "lake"
)

var (
	emuBin    string              // the emulator command
	emuEnv    []string            // its environment (STORAGE_EMULATOR_HOST)
	gcsServer *fakestorage.Server // the lake's GCS
)

func TestMain(m *testing.M) {
	if err := startServices(); err != nil {
		fmt.Fprintln(os.Stderr, "writers/bigquery tests:", err)
		os.Exit(1)
	}
	pgtest.Main(m)
}

func startServices() error {
	bin := filepath.Join(pgtest.RepoRoot(), ".cache", "bin", "bigquery-emulator")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("the BigQuery emulator command is missing (%v): build it with scripts/bigquery-emulator.sh (make test does)", err)
	}
	ports, err := freePorts(1)
	if err != nil {
		return err
	}
	gcsPort := ports[0]
	gcs, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", Port: uint16(gcsPort), PublicHost: "127.0.0.1:" + strconv.Itoa(gcsPort),
	})
	if err != nil {
		return fmt.Errorf("fake-gcs-server: %w", err)
	}
	gcs.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: lakeBucket})
	gcsServer = gcs
	// The Go storage client (the lake's gs:// opener) takes host:port; the
	// emulator prefixes the variable to "/storage/v1/" and needs a scheme.
	gcsHost := "127.0.0.1:" + strconv.Itoa(gcsPort)
	gcsURL := "http://" + gcsHost
	if err := os.Setenv("STORAGE_EMULATOR_HOST", gcsHost); err != nil {
		return err
	}

	emuBin = bin
	emuEnv = append(os.Environ(), "STORAGE_EMULATOR_HOST="+gcsURL)
	return nil
}

// startEmulator starts an emulator for test t on free loopback ports and
// stops it when t ends; it returns its endpoint. Each test has its own: the
// emulator does not recover from some failed requests (its database
// connection stays closed), so one test must not break the next.
func startEmulator(t testing.TB) string {
	t.Helper()
	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	httpPort, grpcPort := ports[0], ports[1]
	cmd := exec.Command(emuBin, "--project="+emuProject, "--host=127.0.0.1",
		"--port="+strconv.Itoa(httpPort), "--grpc-port="+strconv.Itoa(grpcPort), "--log-level=fatal")
	cmd.Env = emuEnv
	cmd.Stderr = os.Stderr
	// The emulator dies with the test process even if it exits abruptly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", emuBin, err)
	}
	// exited is closed when the emulator has exited, waitErr then set, so
	// any number of receivers see it.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
			return
		default:
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Errorf("stop the emulator: %v", err)
		}
		<-exited
	})
	endpoint := "http://127.0.0.1:" + strconv.Itoa(httpPort)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(endpoint + "/bigquery/v2/projects/" + emuProject + "/datasets")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return endpoint
			}
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before answering: %v", emuBin, waitErr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer on %s within 60s", emuBin, endpoint)
		}
	}
}

// freePorts returns n distinct free loopback ports: every listener stays
// open until all are chosen, so the kernel cannot hand out one port twice.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// emulatorConfig returns a Config for a new emulator of test t.
func emulatorConfig(t testing.TB) Config {
	return Config{
		Project:   emuProject,
		Promotion: PromoteCTAS, // the emulator has no copy jobs
		Labels:    map[string]string{"env": "test"},
		ClientOptions: []option.ClientOption{
			option.WithEndpoint(startEmulator(t)),
			option.WithHTTPClient(&http.Client{Transport: finishRequests{http.DefaultTransport}}),
		},
	}
}

// finishRequests lets a request that has reached the emulator finish even
// when its context is cancelled. goccy/bigquery-emulator v0.6.6 runs every
// request on one shared SQLite connection, and a request cancelled in the
// middle of a statement closes that connection for good: every later
// request answers "sql: connection is already closed" and the client
// retries forever. The writer still sees the cancellation: the client checks
// the context before each request and between polls, and so does the
// writer between steps. Real BigQuery needs none of this.
type finishRequests struct{ next http.RoundTripper }

func (f finishRequests) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	return f.next.RoundTrip(r.WithContext(context.WithoutCancel(r.Context())))
}

// newEmulatorWriter returns a Writer on the emulator, closed when t ends.
func newEmulatorWriter(t testing.TB, cfg Config) *Writer {
	t.Helper()
	w, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("close writer: %v", err)
		}
	})
	return w
}
