//! Softmax cross-entropy: loss, correctness and the logits' gradient (shaders/softmax/xent.wgsl).

use crate::error::Result;
use crate::gpu::Gpu;
use crate::kernels::{shader, Kernel};

/// Softmax cross-entropy with its gradient: buffers (z, labels, dz, stats `[rows][2]`, the
/// trainer's hyperparameters, whose word 3 scales dz: `optim::hyper`).
pub fn xent(gpu: &Gpu, rows: usize, cols: usize, scale: f32) -> Result<Kernel> {
    Kernel::new(
        gpu,
        shader!("softmax/xent"),
        "main",
        &consts![ROWS = rows, COLS = cols, SCALE = scale],
        rows as u64,
        vec![
            ("z", rows * cols),
            ("labels", rows),
            ("dz", rows * cols),
            ("stats", rows * 2),
            ("hyper", crate::kernels::optim::HYPER),
        ],
    )
}
