package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/multiproc-go/multiproc"
	"github.com/multiproc-go/multiproc/examples/internal/extest"
	"github.com/multiproc-go/multiproc/internal/testutil"
)

func TestMain(m *testing.M) {
	multiproc.Main()
	testutil.Run(m)
}

// bodies is what the test server serves, by path.
var bodies = map[string]string{
	"/data1": "first file\n",
	"/data2": strings.Repeat("a larger body, in many reads\n", 20000),
	"/data3": "третий файл\n", // non-ASCII survives as bytes
}

// server starts a loopback HTTP server for bodies; anything else is 404.
func server(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := bodies[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestDownload runs the example against a local server and checks the
// lines it prints and the files it saved.
func TestDownload(t *testing.T) {
	srv := server(t)
	dir := t.TempDir()
	urls := []string{srv.URL + "/data1", srv.URL + "/data2", srv.URL + "/data3"}
	out := extest.Run(t, extest.Build(t), append([]string{"-dir", dir}, urls...)...)

	var want []string
	for i, u := range urls {
		body := bodies[fmt.Sprintf("/data%d", i+1)]
		want = append(want, fmt.Sprintf("%s -> data_data%d.txt (%d bytes)", u, i+1, len(body)))
	}
	if got := extest.Lines(out); !slices.Equal(got, want) {
		t.Errorf("output:\n got %q\nwant %q", got, want)
	}
	for i := range urls {
		name := fmt.Sprintf("data_data%d.txt", i+1)
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if want := bodies[fmt.Sprintf("/data%d", i+1)]; string(got) != want {
			t.Errorf("%s: %d bytes, want the %d bytes served", name, len(got), len(want))
		}
	}
}

// TestNotFound checks that an HTTP error fails the run with the status,
// rather than saving the error page.
func TestNotFound(t *testing.T) {
	srv := server(t)
	dir := t.TempDir()
	r := extest.Exec(t, extest.Build(t), "-dir", dir, srv.URL+"/data1", srv.URL+"/missing")
	if r.Err == nil {
		t.Fatalf("the run succeeded with a missing URL; stdout:\n%s", r.Stdout)
	}
	if want := "GET " + srv.URL + "/missing: 404 Not Found"; !strings.Contains(r.Stderr, want) {
		t.Errorf("stderr %q does not contain %q", r.Stderr, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "data_missing.txt")); !os.IsNotExist(err) {
		t.Errorf("data_missing.txt: %v; want it not written", err)
	}
}
