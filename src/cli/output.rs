//! Standard output and error written as Unix tools write them.
//!
//! - A closed pipe (`vgg summary | head -1`) ends the process quietly: `main` restores
//!   SIGPIPE's default action, which Rust's runtime sets to "ignore" (and then `println!`
//!   panics on the EPIPE it gets instead).
//! - Any other failure to write stdout (a full disk: `>/dev/full`) is an error the command
//!   returns: one `error:` line and a non-zero exit, not `println!`'s panic.
//! - Messages to stderr are best effort (there is nowhere else to report their failure);
//!   a failed one is remembered and makes the exit status non-zero.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use vgg_wgpu::Error;

static STDERR_FAILED: AtomicBool = AtomicBool::new(false);

/// Restores SIGPIPE's default action, so a write into a closed pipe ends the process
/// as it ends `cat` or `grep`.
pub fn default_sigpipe() {
    // SAFETY: setting a signal's disposition to its default at startup, before any thread
    // exists, has no memory-safety requirements.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// `args` (and a newline when `newline`) on stdout, flushed: the error names stdout.
pub fn stdout(args: std::fmt::Arguments, newline: bool) -> vgg_wgpu::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_fmt(args)
        .and_then(|_| if newline { o.write_all(b"\n") } else { Ok(()) })
        .and_then(|_| o.flush())
        .map_err(|e| Error::File {
            path: "standard output".into(),
            message: format!("cannot write: {e}"),
        })
}

/// `args` and a newline on stderr, best effort.
pub fn stderr(args: std::fmt::Arguments, newline: bool) {
    let mut e = std::io::stderr().lock();
    let r = e
        .write_fmt(args)
        .and_then(|_| if newline { e.write_all(b"\n") } else { Ok(()) });
    if r.is_err() {
        STDERR_FAILED.store(true, Ordering::Relaxed);
    }
}

/// Whether a write to stderr failed during the run.
pub fn stderr_failed() -> bool {
    STDERR_FAILED.load(Ordering::Relaxed)
}
