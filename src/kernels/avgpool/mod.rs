//! Adaptive average pooling to a fixed output size (7x7 before VGG's classifier), and its
//! input gradient for training.

use super::{per_elem, shader, Kernel};
use crate::error::{shape_err, Result};
use crate::gpu::{Gpu, Precision};
use crate::kernels::Nchw;
use crate::kernels::WG;

/// The shape's overrides (avgpool/header), an empty dimension refused.
fn consts(dims: Nchw, out: (usize, usize)) -> Result<[(&'static str, f64); 7]> {
    let (n, c, h, w) = dims;
    if n * c * h * w == 0 || out.0 == 0 || out.1 == 0 {
        return Err(shape_err!(
            "adaptive pool {dims:?} -> {out:?} has an empty dimension"
        ));
    }
    Ok(consts![
        N = n,
        C = c,
        H = h,
        W = w,
        OH = out.0,
        OW = out.1,
        WG = WG,
    ])
}

/// The forward kernel from `dims` to (n, c, out.0, out.1), tensors stored as `precision`:
/// bindings input, output.
pub fn forward(gpu: &Gpu, dims: Nchw, out: (usize, usize), precision: Precision) -> Result<Kernel> {
    let consts = consts(dims, out)?;
    let (n, c, h, w) = dims;
    let (len, e) = (n * c * out.0 * out.1, precision.bytes());
    let shader = shader!("avgpool/forward").with_precision(precision);
    let bindings = vec![("input", n * c * h * w, e), ("output", len, e)];
    Kernel::with_bindings(gpu, shader, "main", &consts, per_elem(len), bindings)
}

/// The input gradient of the pool from `dims` to (n, c, out.0, out.1), in f32 as training
/// keeps its gradients: bindings dy (the output's gradient), dx.
pub fn backward(gpu: &Gpu, dims: Nchw, out: (usize, usize)) -> Result<Kernel> {
    let consts = consts(dims, out)?;
    let (n, c, h, w) = dims;
    let len = n * c * h * w;
    let bindings = vec![("dy", n * c * out.0 * out.1, 4), ("dx", len, 4)];
    let shader = shader!("avgpool/backward");
    Kernel::with_bindings(gpu, shader, "main", &consts, per_elem(len), bindings)
}
