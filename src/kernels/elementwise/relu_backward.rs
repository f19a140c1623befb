//! ReLU gradient from the forward output (shaders/elementwise/relu_backward.wgsl).

use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{per_elem, shader, Kernel, WG};

/// ReLU gradient from the forward output: buffers (y, dy, dx).
pub fn relu_backward(gpu: &Gpu, len: usize) -> Result<Kernel> {
    Kernel::new(
        gpu,
        shader!("elementwise/relu_backward"),
        "main",
        &consts![LEN = len, WG = WG],
        per_elem(len),
        vec![("y", len), ("dy", len), ("dx", len)],
    )
}
