package log

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// tinyFSEnv names, in a child test, the folder that runOnTinyFS mounted a
// 192 KiB tmpfs on.
const tinyFSEnv = "LEDGE_TINYFS_DIR"

// runOnTinyFS runs the test named child in a child process whose
// tinyFSEnv folder is a 192 KiB tmpfs of its own, mounted in a user and
// mount namespace, so that a full disk can be tested without filling the
// machine's. It skips where the system does not allow those namespaces.
func runOnTinyFS(t *testing.T, child string) {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare")
	}
	dir := t.TempDir()
	probe := exec.Command("unshare", "-rm", "sh", "-c", `mount -t tmpfs -o size=4k tmpfs "$0"`, dir)
	if out, err := probe.CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs in a namespace: %v %s", err, out)
	}
	sh := append([]string{"-rm", "sh", "-c", `mount -t tmpfs -o size=192k tmpfs "$0" && exec "$@"`, dir},
		childArgs("-test.run=^"+child+"$", "-test.count=1", "-test.v")...)
	cmd := exec.Command("unshare", sh...)
	cmd.Env = append(os.Environ(), tinyFSEnv+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+child)) {
		t.Fatalf("child: %v\n%s", err, out)
	}
}
