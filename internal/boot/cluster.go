package boot

import (
	"fmt"
	"os"
	"sync"
)

// EnvCluster names the environment variable that turns a program into a
// cluster worker host: its value is the NATS URL to join. multiproc.Main
// reads it (after the child check: a re-executed child never becomes a
// host) and unsets it, so the host's own children do not inherit it.
const EnvCluster = "MULTIPROC_CLUSTER"

var (
	clusterMu   sync.Mutex
	clusterHost func(url string) int
)

// SetClusterHost installs the function that serves a cluster worker host
// for the NATS URL given in [EnvCluster] and returns the process's exit
// status. The cluster module calls it from its package initialisation; the
// root cannot import that module (it links NATS), so this is the only link
// between them.
func SetClusterHost(fn func(url string) int) {
	clusterMu.Lock()
	defer clusterMu.Unlock()
	clusterHost = fn
}

// ServeClusterIfAsked makes this process a cluster worker host when
// [EnvCluster] is set: it runs the installed host function and exits with
// its status, never returning. A program that does not link the cluster
// module exits with status 2 and a message saying so. When the variable is
// unset it returns at once.
func ServeClusterIfAsked() {
	url, ok := os.LookupEnv(EnvCluster)
	if !ok {
		return
	}
	os.Unsetenv(EnvCluster)
	clusterMu.Lock()
	fn := clusterHost
	clusterMu.Unlock()
	if url == "" {
		fmt.Fprintf(os.Stderr, "multiproc: %s is set but empty: give it the NATS URL of the cluster to join (nats://host:4222), or unset it\n", EnvCluster)
		os.Exit(2)
	}
	if fn == nil {
		fmt.Fprintf(os.Stderr, "multiproc: %s=%s asks this program to serve as a cluster worker host, but it does not link the cluster module: import github.com/multiproc-go/multiproc/cluster in the program (a blank import is enough), or unset %s\n", EnvCluster, url, EnvCluster)
		os.Exit(2)
	}
	os.Exit(fn(url))
}
