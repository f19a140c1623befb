//! Per-channel sums of [n, c, hw]: the bias gradients of conv and FC layers
//! (shaders/elementwise/channel_sum.wgsl).

use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{shader, Kernel};

/// Per-channel sums of [n, c, hw] (bias gradients): buffers (x, out`[c]`).
pub fn channel_sum(gpu: &Gpu, n: usize, c: usize, hw: usize, accumulate: bool) -> Result<Kernel> {
    Kernel::new(
        gpu,
        shader!("elementwise/channel_sum"),
        "main",
        &consts![N = n, C = c, HW = hw, ACCUMULATE = accumulate],
        c as u64,
        vec![("x", n * c * hw), ("out", c)],
    )
}
