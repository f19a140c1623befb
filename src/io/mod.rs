//! Files in and out: safetensors weights (torchvision's key names), images and their
//! preprocessing, ImageNet class names, and feature files (.npy, safetensors).

pub mod datasets;
pub mod image;
pub mod labels;
pub mod npy;
pub mod onnx;
pub mod pth;
pub mod scale;
pub mod weights;

pub use weights::{load_weights, read_safetensors, save_safetensors};

use crate::error::Error;
use std::io::Read;
use std::path::Path;

/// The size of the regular file at `path` (symlinks followed), or an error saying what it
/// is instead: reading a FIFO blocks until a writer comes, and a device may never end.
pub fn regular_size(path: &Path) -> crate::Result<u64> {
    let meta = std::fs::metadata(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    let t = meta.file_type();
    if t.is_file() {
        return Ok(meta.len());
    }
    let what = if t.is_dir() {
        "a directory"
    } else {
        special_kind(&t)
    };
    Err(file_err(path, format!("is {what}, not a regular file")))
}

#[cfg(unix)]
fn special_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else {
        "not a file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "not a file"
}

/// A whole regular file of at most `max` bytes (`what` names the kind in the error): the
/// size is checked before anything is allocated, and the read stops past `max` should the
/// file grow meanwhile.
pub fn read_file(path: &Path, max: u64, what: &str) -> crate::Result<Vec<u8>> {
    let size = regular_size(path)?;
    if size > max {
        return Err(file_err(
            path,
            format!("is {size} bytes, over the {max}-byte limit for {what}"),
        ));
    }
    if let Some(avail) = memory_available().filter(|a| size > *a) {
        return Err(file_err(
            path,
            format!("is {size} bytes; {avail} bytes of memory are available to read it"),
        ));
    }
    let f = std::fs::File::open(path).map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    let mut out = Vec::with_capacity(size as usize);
    f.take(max + 1)
        .read_to_end(&mut out)
        .map_err(|e| file_err(path, format!("cannot read: {e}")))?;
    if out.len() as u64 > max {
        return Err(file_err(
            path,
            format!("grew past the {max}-byte limit for {what}"),
        ));
    }
    Ok(out)
}

/// `read_file` as UTF-8 text.
pub fn read_text(path: &Path, max: u64, what: &str) -> crate::Result<String> {
    String::from_utf8(read_file(path, max, what)?)
        .map_err(|_| file_err(path, format!("is not UTF-8 text ({what} expected)")))
}

/// `MemAvailable` from /proc/meminfo (Linux), in bytes: what a loader may fill at most.
pub fn memory_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// This process's resident memory now (`VmRSS`) and its peak so far (`VmHWM`), in bytes,
/// where the system says (Linux).
pub fn resident_bytes() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        kib.checked_mul(1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The host's memory in all (`MemTotal`), where the system says.
pub fn memory_total() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Refuses a buffer of `bytes` for `what` that the host could not hold: checked before the
/// allocation, so a size from a header or an option fails with a message, not an abort.
pub fn check_host_bytes(bytes: Option<u64>, what: &str) -> crate::Result<u64> {
    let avail = memory_available();
    match bytes {
        Some(b) if avail.is_none_or(|a| b <= a) => Ok(b),
        Some(b) => Err(Error::Limit(format!(
            "{what} would take {b} bytes of memory; {} are available",
            avail.unwrap_or(0)
        ))),
        None => Err(Error::Limit(format!(
            "{what} would take more bytes than a 64-bit size holds"
        ))),
    }
}

/// An error about one file, named in the message.
pub fn file_err(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory: written,
/// flushed to disk, renamed over `path`, and the directory flushed too, so a crash or a
/// full disk at any point leaves either the old file or the new one, never a truncated
/// one. The temporary file is removed on any failure, and errors name `path`.
///
/// Only regular files are written or replaced: an existing FIFO, device, socket or
/// directory at `path` (or a symlink to one) is refused by name, since renaming over it
/// would replace, say, /dev/null for every user. A symlink to a regular file is written
/// through: the file it names is replaced and the link stays.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> crate::Result<()> {
    use std::io::Write;
    let target;
    let path = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            regular_size(path)?;
            target = std::fs::canonicalize(path).map_err(|e| file_err(path, e))?;
            target.as_path()
        }
        Ok(_) => {
            regular_size(path)?;
            path
        }
        Err(_) => path,
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let name = path
        .file_name()
        .ok_or_else(|| file_err(path, "is not a file name"))?;
    let tmp = dir.unwrap_or(Path::new(".")).join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let fail = |e: std::io::Error| {
        let _ = std::fs::remove_file(&tmp);
        file_err(path, format!("cannot write: {e}"))
    };
    // A leftover temporary file of a killed run with this pid goes; create_new never opens
    // what is there (a FIFO planted under the name would block the write).
    if std::fs::symlink_metadata(&tmp).is_ok_and(|m| m.is_file()) {
        let _ = std::fs::remove_file(&tmp);
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| file_err(path, format!("cannot write: {e}")))?;
    // Written, flushed and closed (the function takes the file) before the rename.
    let write = |mut f: std::fs::File| f.write_all(bytes).and_then(|_| f.sync_all());
    write(f).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)?;
    // The rename is durable once the directory is on disk (not every platform can open a
    // directory to flush it; there the rename alone has to do).
    if let Ok(d) = std::fs::File::open(dir.unwrap_or(Path::new("."))) {
        let _ = d.sync_all();
    }
    Ok(())
}
