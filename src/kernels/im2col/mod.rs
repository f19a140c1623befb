//! Window gathering for dense evaluation: every kh x kw window (stride 1, no padding) of an
//! NCHW map becomes one row [C * kh * kw], so FC layers run as convolutions.

use super::{per_elem, shader, Kernel};
use crate::error::{shape_err, Result};
use crate::gpu::{Gpu, Precision};
use crate::kernels::Nchw;
use crate::kernels::WG;

/// Window positions per image of a `window` over an h x w map.
pub fn positions((_, _, h, w): Nchw, window: (usize, usize)) -> usize {
    (h - window.0 + 1) * (w - window.1 + 1)
}

/// The kernel gathering every `window` of `dims` into a row, tensors stored as
/// `precision`: bindings input, output `[n][positions][c][kh][kw]`.
pub fn forward(
    gpu: &Gpu,
    dims: Nchw,
    window: (usize, usize),
    precision: Precision,
) -> Result<Kernel> {
    let (n, c, h, w) = dims;
    let (kh, kw) = window;
    if n * c == 0 || kh == 0 || kw == 0 || h < kh || w < kw {
        return Err(shape_err!(
            "a {kh}x{kw} window does not fit a {h}x{w} map (input {dims:?})"
        ));
    }
    let consts = consts![N = n, C = c, H = h, W = w, KH = kh, KW = kw, WG = WG];
    let (len, e) = (n * positions(dims, window) * c * kh * kw, precision.bytes());
    let shader = shader!("im2col/forward").with_precision(precision);
    let bindings = vec![("input", n * c * h * w, e), ("output", len, e)];
    Kernel::with_bindings(gpu, shader, "main", &consts, per_elem(len), bindings)
}
