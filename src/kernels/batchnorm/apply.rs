//! Training-mode batch norm's normalisation with batch statistics (shaders/batchnorm/apply.wgsl).

use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{nchw_consts, per_elem, shader, Kernel, WG};

/// Batch norm (training) normalisation with the batch statistics, optional ReLU: buffers
/// (x, gamma, beta, stats, y).
pub fn apply(gpu: &Gpu, n: usize, c: usize, hw: usize, relu: bool) -> Result<Kernel> {
    let mut k = nchw_consts(n, c, hw);
    k.extend(consts![RELU = relu, WG = WG]);
    let len = n * c * hw;
    Kernel::new(
        gpu,
        shader!("batchnorm/apply"),
        "main",
        &k,
        per_elem(len),
        vec![
            ("x", len),
            ("gamma", c),
            ("beta", c),
            ("stats", 2 * c),
            ("y", len),
        ],
    )
}
