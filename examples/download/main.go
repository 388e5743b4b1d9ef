// Command download ports the seed article's parallel download case: a
// Pool(3) maps download_data over URLs, and each worker fetches one URL
// and saves the body as data_<last path segment>.txt.
//
//	def download_data(url):
//	    response = requests.get(url)
//	    with open(f'data_{url.split("/")[-1]}.txt', 'w') as f:
//	        f.write(response.text)
//
//	urls = ['http://example.com/data1', 'http://example.com/data2', 'http://example.com/data3']
//	with Pool(3) as p:
//	    p.map(download_data, urls)
//
// The directory to save in reaches the workers through an initializer, as
// Python's Pool(3, initializer=set_dir, initargs=(dir,)) would pass it. A
// response other than 200 OK is an error here (requests would save the
// error page), and, as in Python, the first error fails the map.
//
// Usage:
//
//	download [-dir DIR] [URL...]
//
// Without URLs it fetches the seed's three example.com URLs.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/multiproc-go/multiproc"
)

// saveDir is where a worker saves what it downloads. The initializer sets
// it once in each worker, before the worker takes tasks; the parent never
// reads it.
var saveDir string

var (
	setDir = multiproc.Register("download.set_dir", multiproc.Plain(func(dir string) struct{} {
		saveDir = dir
		return struct{}{}
	}))
	downloadData = multiproc.Register("download.download_data", download)
)

// saved describes one downloaded file.
type saved struct {
	File  string
	Bytes int64
}

var client = &http.Client{Timeout: time.Minute}

// download is the seed's download_data. It runs in a worker process.
func download(ctx context.Context, rawURL string) (saved, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return saved{}, err
	}
	name := "data_" + path.Base(u.Path) + ".txt"
	if u.Path == "" || u.Path == "/" {
		name = "data_.txt" // what url.split("/")[-1] gives for a bare host
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return saved{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return saved{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return saved{}, fmt.Errorf("GET %s: %s", rawURL, resp.Status)
	}
	f, err := os.Create(filepath.Join(saveDir, name))
	if err != nil {
		return saved{}, err
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return saved{}, fmt.Errorf("GET %s: %w", rawURL, err)
	}
	return saved{File: name, Bytes: n}, nil
}

func main() {
	multiproc.Main() // Go's `if __name__ == "__main__":`; must come first
	dir := flag.String("dir", ".", "directory to save the files in")
	flag.Parse()
	urls := flag.Args()
	if len(urls) == 0 {
		urls = []string{"http://example.com/data1", "http://example.com/data2", "http://example.com/data3"}
	}
	if err := run(context.Background(), *dir, urls); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, dir string, urls []string) error {
	// An absolute path, so that it means the same in every worker.
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	p, err := multiproc.NewPool(ctx, 3, multiproc.Initializer(setDir, dir))
	if err != nil {
		return err
	}
	defer p.Close()
	files, err := multiproc.Map(ctx, p, downloadData, urls)
	if err != nil {
		return err
	}
	for i, f := range files {
		fmt.Printf("%s -> %s (%d bytes)\n", urls[i], f.File, f.Bytes)
	}
	return p.Close()
}
