// An integration test: its own test binary, so its own VM.

#[test]
fn integration_test_runs_in_a_kestrel_vm() {
    kestrel_example::assert_in_kestrel_vm("integration test");
    // The root file system is the host's, read-only under a throw-away layer:
    // this write succeeds in the VM and never reaches the host.
    std::fs::write("/etc/kestrel-example-scratch", b"vanishes with the VM").unwrap();
}
