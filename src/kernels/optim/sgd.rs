//! The fused SGD step with momentum and weight decay (shaders/optim/sgd.wgsl), and the
//! overflow check of loss-scaled training (shaders/optim/overflow.wgsl).

use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{per_elem, shader, Kernel, WG};

/// Words of the hyperparameter buffer: [lr, momentum, weight decay, loss scale S, 1 / S,
/// overflow flag]. softmax/xent reads S, optim/sgd the rest, optim/overflow sets the flag.
pub const HYPER: usize = 6;
/// The word of the overflow flag (nonzero: skip the step), as the shaders index it.
pub const OVERFLOW: usize = 5;

/// The hyperparameter buffer's contents for a step at loss scale `scale` (1 without loss
/// scaling), the overflow flag cleared.
pub fn hyper(lr: f32, momentum: f32, weight_decay: f32, scale: f32) -> [f32; HYPER] {
    [lr, momentum, weight_decay, scale, 1.0 / scale, 0.0]
}

/// The fused SGD step: buffers (w, g, v, hyperparameters, [`HYPER`] words).
pub fn sgd(gpu: &Gpu, len: usize) -> Result<Kernel> {
    Kernel::new(
        gpu,
        shader!("optim/sgd"),
        "main",
        &consts![LEN = len, WG = WG],
        per_elem(len),
        vec![("w", len), ("g", len), ("v", len), ("hyper", HYPER)],
    )
}

/// Sets the hyperparameter buffer's overflow flag where a gradient of `len` elements holds
/// an infinity or NaN: buffers (g, hyperparameters).
pub fn overflow(gpu: &Gpu, len: usize) -> Result<Kernel> {
    Kernel::new(
        gpu,
        shader!("optim/overflow"),
        "main",
        &consts![LEN = len, WG = WG],
        per_elem(len),
        vec![("g", len), ("hyper", HYPER)],
    )
}
