//! Local response normalisation across channels (config A-LRN), PyTorch semantics.

mod backward;

pub use backward::backward;

use super::{per_elem, shader, Kernel};
use crate::error::{shape_err, Result};
use crate::gpu::{Gpu, Precision};
use crate::kernels::Nchw;
use crate::kernels::WG;

/// The LRN constants are model data; the kernel takes them as they are.
pub use crate::model::LrnParams;

/// The forward kernel over `dims` with tensors stored as `precision`: bindings input,
/// output.
pub fn forward(gpu: &Gpu, dims: Nchw, params: LrnParams, precision: Precision) -> Result<Kernel> {
    let (n, c, h, w) = dims;
    if n * c * h * w == 0 || params.size == 0 {
        return Err(shape_err!("LRN over {dims:?} with size {}", params.size));
    }
    let consts = consts![
        N = n,
        C = c,
        HW = h * w,
        SIZE = params.size,
        ALPHA = params.alpha,
        BETA = params.beta,
        K = params.k,
        WG = WG,
    ];
    let (len, e) = (n * c * h * w, precision.bytes());
    let shader = shader!("lrn/forward").with_precision(precision);
    let bindings = vec![("input", len, e), ("output", len, e)];
    Kernel::with_bindings(gpu, shader, "main", &consts, per_elem(len), bindings)
}
