//! elementwise's benchmark rows: the ReLU gradient and dropout, each beside the CPU
//! reference's time where asked.

use super::{grad, Io, Row, Settings};
use crate::bench::report::Kernel;
use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels;
use crate::reference;

/// The ReLU gradient over `len` elements, from the forward output.
pub async fn relu_backward(gpu: &Gpu, len: usize, set: Settings) -> Result<Kernel> {
    let io = Io {
        inputs: &[len, len],
        zeroed: &[],
        output: len,
    };
    let row = Row {
        op: "elementwise/relu_backward",
        shape: len.to_string(),
        flops: 0.0,
    };
    let cpu = |d: &[Vec<f32>]| {
        reference::elementwise::relu_backward(&d[0], &d[1]);
    };
    let k = kernels::elementwise::relu_backward(gpu, len)?;
    grad(gpu, set, &k, io, row, Some(&cpu)).await
}

/// Dropout at p = 0.5 over `len` elements (the forward; the backward is the same kernel on
/// the gradient).
pub async fn dropout(gpu: &Gpu, len: usize, set: Settings) -> Result<Kernel> {
    let p = 0.5;
    // The seed is one word; any bits are a seed.
    let io = Io {
        inputs: &[len, 1],
        zeroed: &[],
        output: len,
    };
    let row = Row {
        op: "elementwise/dropout",
        shape: format!("{len} p={p}"),
        flops: 0.0,
    };
    let cpu = |d: &[Vec<f32>]| {
        reference::elementwise::dropout(&d[0], p, d[1][0].to_bits());
    };
    let k = kernels::elementwise::dropout(gpu, len, p)?;
    grad(gpu, set, &k, io, row, Some(&cpu)).await
}
