//! The library's error type. User input (shapes, options, adapters) never panics; it comes
//! back as one of these, and the CLI prints it as a single line.

use std::fmt;

#[derive(Debug)]
pub enum Error {
    /// No adapter at all on the requested backends.
    NoAdapter { backends: String },
    /// `--adapter` / `VGG_ADAPTER` matched nothing.
    AdapterNotFound {
        query: String,
        available: Vec<String>,
    },
    /// An option value that cannot be parsed or is out of range.
    InvalidOption { option: String, message: String },
    /// The adapter refused the device request.
    RequestDevice(String),
    /// A tensor shape or buffer size that a kernel cannot accept.
    Shape(String),
    /// The adapter's limits cannot hold a request, even split.
    Limit(String),
    /// The adapter lacks something the engine cannot do without (compute shaders).
    Unsupported(String),
    /// An error reported by wgpu (validation, out of memory) or the device was lost.
    Gpu { op: String, message: String },
    /// A file that cannot be read, decoded or written, or whose contents are wrong.
    File { path: String, message: String },
    /// Training stopped: the loss went non-finite or exploded.
    Diverged(String),
    /// A forward produced infinities or NaN (weights that overflow f32).
    NonFinite(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoAdapter { backends } => write!(
                f,
                "no GPU adapter found on backends [{backends}]; on Linux without a GPU install \
                 the software Vulkan driver: `apt-get install mesa-vulkan-drivers libvulkan1`"
            ),
            Error::AdapterNotFound { query, available } => write!(
                f,
                "no adapter matches '{query}' (give an index or a name substring); available: {}",
                if available.is_empty() {
                    "none".to_string()
                } else {
                    available.join(", ")
                }
            ),
            Error::InvalidOption { option, message } => write!(f, "invalid {option}: {message}"),
            Error::RequestDevice(m) => write!(f, "the adapter refused the device request: {m}"),
            Error::Shape(m) => write!(f, "shape error: {m}"),
            Error::Limit(m) => write!(f, "adapter limit: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported adapter: {m}"),
            Error::Gpu { op, message } => write!(f, "GPU error in {op}: {message}"),
            Error::File { path, message } => write!(f, "{path}: {message}"),
            Error::Diverged(m) | Error::NonFinite(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for shape errors built with `format!`.
macro_rules! shape_err {
    ($($arg:tt)*) => { $crate::error::Error::Shape(format!($($arg)*)) };
}
pub(crate) use shape_err;
