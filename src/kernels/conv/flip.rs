//! The input gradient's weight (shaders/conv/flip.wgsl): canonical [c_out, c_in, k, k] to
//! [c_in, c_out, k, k] rotated by 180 degrees, so the input gradient runs as a forward conv.

use crate::error::{shape_err, Result};
use crate::gpu::Gpu;
use crate::kernels::{per_elem, shader, Kernel, WG};

/// Buffers (canonical weight, flipped weight), both `c_out * c_in * k * k` f32.
pub fn flip(gpu: &Gpu, c_in: usize, c_out: usize, k: usize) -> Result<Kernel> {
    if k.is_multiple_of(2) {
        return Err(shape_err!(
            "the flipped-weight input gradient needs an odd kernel, not {k}"
        ));
    }
    let len = c_out * c_in * k * k;
    Kernel::new(
        gpu,
        shader!("conv/flip"),
        "main",
        &[
            ("C_IN", c_in as f64),
            ("C_OUT", c_out as f64),
            ("KS", k as f64),
            ("WG", WG as f64),
        ],
        per_elem(len),
        vec![("weight", len), ("flipped", len)],
    )
}
