package multiproc_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestClusterVariableWithoutModule guards what a program that does not link
// the cluster module does when MULTIPROC_CLUSTER is set: Main exits 2 with
// a message naming the import, instead of running the program as if the
// variable were not there (or hanging).
func TestClusterVariableWithoutModule(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, value, want string }{
		{"url", "nats://127.0.0.1:1", "does not link the cluster module"},
		{"empty", "", "is set but empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), "MULTIPROC_CLUSTER="+tc.value)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Fatalf("exit: %v, want status 2; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output %q does not say %q", out, tc.want)
			}
		})
	}
}
