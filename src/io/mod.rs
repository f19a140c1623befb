//! Files in and out: safetensors weights (torchvision's key names), images and their
//! preprocessing, ImageNet class names, and feature files (.npy, safetensors).

pub mod datasets;
pub mod image;
pub mod labels;
pub mod npy;
pub mod weights;

pub use weights::{load_weights, read_safetensors, save_safetensors};

use crate::error::Error;
use std::path::Path;

/// An error about one file, named in the message.
pub fn file_err(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// an interrupted write never leaves a truncated file where a good one was.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> crate::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let name = path
        .file_name()
        .ok_or_else(|| file_err(path, "is not a file name"))?;
    let tmp = dir.unwrap_or(Path::new(".")).join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).map_err(|e| file_err(&tmp, format!("cannot write: {e}")))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        file_err(path, format!("cannot write: {e}"))
    })
}
