//! The FMA-throughput kernel (shaders/peak/fma.wgsl): the adapter's practical arithmetic peak.

use crate::error::{shape_err, Result};
use crate::gpu::Gpu;
use crate::kernels::{per_elem, shader, Kernel, WG};

/// `threads` invocations, each `iters` steps of 16 FMA lanes, writing one vec4 each:
/// buffers (output of `4 * threads` f32).
pub fn fma(gpu: &Gpu, threads: usize, iters: usize) -> Result<Kernel> {
    if threads == 0 || iters == 0 {
        return Err(shape_err!("peak FMA with no work"));
    }
    Kernel::new(
        gpu,
        shader!("peak/fma"),
        "main",
        &consts![LEN = threads, ITERS = iters, WG = WG],
        per_elem(threads),
        vec![("output", 4 * threads)],
    )
}

/// Floating-point operations of one run of `fma` (2 per FMA).
pub fn fma_flops(threads: usize, iters: usize) -> f64 {
    (threads * iters * 16 * 2) as f64
}
