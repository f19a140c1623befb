//! im2col's benchmark row: dense evaluation's window gather.

use super::{dims_str, entry, len, unary, with_cpu, Lens, Settings};
use crate::bench::report::Kernel;
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels;
use crate::kernels::Nchw;
use crate::reference;

/// Dense evaluation's window gather.
pub async fn forward(
    gpu: &Gpu,
    dims: Nchw,
    window: (usize, usize),
    set: Settings,
) -> Result<Kernel> {
    let k = kernels::im2col::forward(gpu, dims, window, Precision::F32)?;
    let out_len = dims.0 * kernels::im2col::positions(dims, window) * dims.1 * window.0 * window.1;
    let lens = Lens {
        input: len(dims),
        output: out_len,
    };
    let (t, cpu) = unary(gpu, set, 7, &k, lens, &[], |x| {
        reference::im2col::forward(x, dims, window.0, window.1)
    })
    .await?;
    let bytes = 8.0 * out_len as f64;
    let shape = format!("{} window {}x{}", dims_str(dims), window.0, window.1);
    Ok(with_cpu(entry("im2col/forward", shape, t, 0.0, bytes), cpu))
}
