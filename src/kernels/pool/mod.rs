//! 2x2 max pooling, stride 2, floor for odd sizes, optionally writing argmax indices.

mod backward;

pub use backward::backward;

use super::{per_elem, shader, Kernel};
use crate::error::{shape_err, Result};
use crate::gpu::{Gpu, Precision};
use crate::kernels::Nchw;
use crate::kernels::WG;

/// The output length of a 2x2 pool over input dims (n, c, h, w).
pub fn output_len((n, c, h, w): Nchw) -> usize {
    n * c * (h / 2) * (w / 2)
}

/// The forward kernel over input `dims` with tensors stored as `precision`: bindings
/// input, output and, `with_index`, the argmax (u32 per output, PyTorch's flat index
/// within the input plane) for the backward pass.
pub fn forward(gpu: &Gpu, dims: Nchw, with_index: bool, precision: Precision) -> Result<Kernel> {
    let (n, c, h, w) = dims;
    if n * c == 0 || h < 2 || w < 2 {
        return Err(shape_err!(
            "max pool input {dims:?} is smaller than 2x2 or empty"
        ));
    }
    let (entry, e, out) = (
        if with_index { "main_index" } else { "main" },
        precision.bytes(),
        output_len(dims),
    );
    let mut bindings = vec![("input", n * c * h * w, e), ("output", out, e)];
    if with_index {
        bindings.push(("argmax", out, 4));
    }
    let consts = consts![N = n, C = c, H = h, W = w, WG = WG];
    let shader = shader!("pool/forward").with_precision(precision);
    Kernel::with_bindings(gpu, shader, entry, &consts, per_elem(out), bindings)
}
