//! A tiny library whose tests run in kestrel VMs: `kestrel cargo test`.
//!
//! What the tests write in the project (or in the target directory) reaches
//! the host, coverage included (rustc with the profiler runtime, as rustup's):
//!
//! ```text
//! RUSTFLAGS="-C instrument-coverage" \
//!   LLVM_PROFILE_FILE="$PWD/target/profiles/%p-%m.profraw" kestrel cargo test
//! ```
//!
//! leaves one .profraw per test binary in target/profiles (%m tells the
//! binaries apart: each runs in a VM of its own, where PIDs repeat).

/// Adds two numbers.
pub fn add(a: u64, b: u64) -> u64 {
    a + b
}

/// Where this code runs: the hostname and the kernel release.
pub fn machine() -> (String, String) {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    (
        read("/proc/sys/kernel/hostname"),
        read("/proc/sys/kernel/osrelease"),
    )
}

/// Panics unless this process runs in a kestrel VM: kestrel sets KESTREL_VM
/// to the VM's name, which is also the guest's hostname. Prints where it runs.
pub fn assert_in_kestrel_vm(test: &str) {
    let vm = std::env::var("KESTREL_VM").expect("KESTREL_VM is unset: not running in a kestrel VM");
    let (hostname, kernel) = machine();
    assert_eq!(hostname, vm, "the hostname is not the VM's name");
    println!("{}: in VM {} on kernel {}", test, hostname, kernel);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds() {
        assert_eq!(add(2, 3), 5);
    }

    #[test]
    fn runs_in_a_kestrel_vm() {
        assert_in_kestrel_vm("unit test");
    }

    // Shows what a failure looks like: EXAMPLE_SHOULD_FAIL=1 kestrel cargo test
    #[test]
    fn fails_when_asked() {
        assert!(
            std::env::var_os("EXAMPLE_SHOULD_FAIL").is_none(),
            "failing because EXAMPLE_SHOULD_FAIL is set"
        );
    }
}
