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

/// Gives wgpu's OpenGL backend the runtime directory it expects. EGL (through Mesa's
/// platform code) prints "XDG_RUNTIME_DIR is invalid or not set" twice on every run
/// without one, as on a fresh container or under sudo, though nothing it does needs it.
/// Where the variable is unset or names no directory, a private one is made
/// (`$TMPDIR/vgg-runtime-UID`, mode 0700) and set, before any thread exists.
pub fn runtime_dir() {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        let ok =
            std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
        if ok {
            return;
        }
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let dir = std::env::temp_dir().join(format!("vgg-runtime-{uid}"));
        let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
        // Only a directory of ours that no one else can enter (another user could have
        // made the name first in a shared /tmp).
        let ours = std::fs::symlink_metadata(&dir)
            .is_ok_and(|m| m.is_dir() && m.uid() == uid && m.permissions().mode() & 0o077 == 0);
        if ours {
            std::env::set_var("XDG_RUNTIME_DIR", &dir);
        }
    }
}
