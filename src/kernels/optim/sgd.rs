//! The fused SGD step with momentum and weight decay (shaders/optim/sgd.wgsl).

use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{per_elem, shader, Kernel, WG};

/// The fused SGD step: buffers (w, g, v, hyperparameters [lr, momentum, wd]).
pub fn sgd(gpu: &Gpu, len: usize) -> Result<Kernel> {
    Kernel::new(
        gpu,
        shader!("optim/sgd"),
        "main",
        &[("LEN", len as f64), ("WG", WG as f64)],
        per_elem(len),
        vec![("w", len), ("g", len), ("v", len), ("hyper", 3)],
    )
}
