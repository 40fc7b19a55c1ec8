package calc

import (
	"os"
	"strings"
	"testing"
)

func TestAdd(t *testing.T) {
	if got := Add(2, 3); got != 5 {
		t.Fatalf("Add(2, 3) = %d, want 5", got)
	}
}

// kestrel sets KESTREL_VM to the VM's name, which is also the guest's hostname.
func TestRunsInAKestrelVM(t *testing.T) {
	vm := os.Getenv("KESTREL_VM")
	if vm == "" {
		t.Fatal("KESTREL_VM is unset: not running in a kestrel VM")
	}
	hostname, err := os.ReadFile("/proc/sys/kernel/hostname")
	if err != nil {
		t.Fatal(err)
	}
	kernel, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		t.Fatal(err)
	}
	if h := strings.TrimSpace(string(hostname)); h != vm {
		t.Fatalf("hostname %q is not the VM's name %q", h, vm)
	}
	t.Logf("in VM %s on kernel %s", vm, strings.TrimSpace(string(kernel)))
}

// What a test writes in its project reaches the host (kestrel shares the
// project read-write; the rest of the root vanishes with the VM):
// EXAMPLE_WRITE_ARTIFACT=artifact.txt kestrel go test ./... leaves
// artifact.txt next to this file. Coverage profiles (-cover, -coverprofile)
// reach the host the same way, through go's work directory.
func TestWritesArtifact(t *testing.T) {
	name := os.Getenv("EXAMPLE_WRITE_ARTIFACT")
	if name == "" {
		t.Skip("EXAMPLE_WRITE_ARTIFACT is unset")
	}
	if err := os.WriteFile(name, []byte("written in VM "+os.Getenv("KESTREL_VM")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
