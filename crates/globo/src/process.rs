//! Process hardening for programs that hold secrets in memory.

use crate::HardeningError;

/// Makes the calling process safe to hold passwords, keys and secret values in memory: no core
/// file is ever written for it, and (on Linux) other processes of the same user can neither
/// attach a debugger to it nor read its memory.
///
/// - `setrlimit(RLIMIT_CORE, 0)` (soft and hard limit): a crash or `abort()` (the release
///   profile aborts on panic) writes no core file, whatever `ulimit -c` said.
/// - On Linux, `prctl(PR_SET_DUMPABLE, 0)`: no core file even through a `core_pattern` pipe
///   such as systemd-coredump; `ptrace` attach and `/proc/<pid>/mem` are refused to every
///   process without `CAP_SYS_PTRACE`, and the process's `/proc/<pid>/` files belong to root.
///   The process itself keeps full access to its own `/proc/self` (globo-fs uses
///   `/proc/self/fd` to name a finished temporary file on kernels before 6.10).
///
/// On other Unix systems only the core limit is set; elsewhere the function does nothing.
///
/// Call it first thing in `main`, before any secret is read; it affects the whole process,
/// threads included. Both settings are one-way for an unprivileged process (a process that
/// could undo them would not be hardened); child processes inherit the core limit.
///
/// Both calls only lower privileges, so they fail only where a sandbox forbids the system
/// calls; globo's binaries then refuse to run (fail closed) rather than hold secrets in a
/// dumpable process.
///
/// ```
/// # fn main() -> Result<(), globo::HardeningError> {
/// globo::harden_process()?;
/// # Ok(()) }
/// ```
pub fn harden_process() -> Result<(), HardeningError> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, setrlimit};
        let zero = Rlimit { current: Some(0), maximum: Some(0) };
        setrlimit(Resource::Core, zero).map_err(|e| HardeningError::CoreLimit(e.into()))?;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| HardeningError::NotDumpable(e.into()))?;
    Ok(())
}
