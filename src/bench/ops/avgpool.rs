//! avgpool's benchmark rows: adaptive average pooling forward and its input gradient.

use super::{dims_str, entry, grad, len, unary, with_cpu, Io, Lens, Row, Settings};
use crate::bench::report::Kernel;
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels;
use crate::kernels::Nchw;
use crate::reference;

fn shape(dims: Nchw, out: (usize, usize)) -> String {
    format!("{} -> {}x{}", dims_str(dims), out.0, out.1)
}

/// Adaptive average pooling to `out`.
pub async fn forward(gpu: &Gpu, dims: Nchw, out: (usize, usize), set: Settings) -> Result<Kernel> {
    let k = kernels::avgpool::forward(gpu, dims, out, Precision::F32)?;
    let out_len = dims.0 * dims.1 * out.0 * out.1;
    let lens = Lens {
        input: len(dims),
        output: out_len,
    };
    let (t, cpu) = unary(gpu, set, 6, &k, lens, &[], |x| {
        reference::avgpool::forward(x, dims, out.0, out.1)
    })
    .await?;
    let bytes = 4.0 * (len(dims) + out_len) as f64;
    Ok(with_cpu(
        entry("avgpool/forward", shape(dims, out), t, 0.0, bytes),
        cpu,
    ))
}

/// The adaptive average pool's input gradient (training below the input size the pool
/// was made for: a VGG at 32x32 spreads each 7x7 bin back to its 1x1 map).
pub async fn backward(gpu: &Gpu, dims: Nchw, out: (usize, usize), set: Settings) -> Result<Kernel> {
    let io = Io {
        inputs: &[dims.0 * dims.1 * out.0 * out.1],
        zeroed: &[],
        output: len(dims),
    };
    let row = Row {
        op: "avgpool/backward",
        shape: shape(dims, out),
        flops: 0.0,
    };
    let k = kernels::avgpool::backward(gpu, dims, out)?;
    grad(gpu, set, &k, io, row, None).await
}
