//! softmax's benchmark rows: the forward over rows and the fused cross-entropy.

use super::{entry, grad, unary, with_cpu, Io, Lens, Row, Settings};
use crate::bench::report::Kernel;
use crate::error::Result;
use crate::gpu::{Gpu, Precision};
use crate::kernels;
use crate::reference;

/// Softmax over [rows, cols].
pub async fn forward(gpu: &Gpu, rows: usize, cols: usize, set: Settings) -> Result<Kernel> {
    let k = kernels::softmax::forward(gpu, rows, cols, Precision::F32)?;
    let lens = Lens {
        input: rows * cols,
        output: rows * cols,
    };
    let (t, cpu) = unary(gpu, set, 8, &k, lens, &[], |x| {
        reference::softmax::forward(x, rows, cols)
    })
    .await?;
    let bytes = 8.0 * (rows * cols) as f64;
    Ok(with_cpu(
        entry("softmax/forward", format!("{rows}x{cols}"), t, 0.0, bytes),
        cpu,
    ))
}

/// Softmax cross-entropy: the logits' gradient and per-row statistics.
pub async fn xent(gpu: &Gpu, rows: usize, cols: usize, set: Settings) -> Result<Kernel> {
    // The hyperparameters in the output slot: zeros, a loss scale of 0, which changes no
    // load or store.
    let io = Io {
        inputs: &[rows * cols, rows, rows * cols, rows * 2],
        zeroed: &[1],
        output: kernels::optim::HYPER,
    };
    let row = Row {
        op: "softmax/xent",
        shape: format!("{rows}x{cols}"),
        flops: 0.0,
    };
    let k = kernels::softmax::xent(gpu, rows, cols, 1.0 / rows as f32)?;
    grad(gpu, set, &k, io, row, None).await
}
