//! The copy kernel (shaders/peak/copy.wgsl): the adapter's practical memory bandwidth.

use crate::error::{shape_err, Result};
use crate::gpu::Gpu;
use crate::kernels::{per_elem, shader, Kernel, WG};

/// Copies `len` f32 (a positive multiple of 4) as vec4: buffers (input, output).
pub fn copy(gpu: &Gpu, len: usize) -> Result<Kernel> {
    if len == 0 || !len.is_multiple_of(4) {
        return Err(shape_err!(
            "copy length {len} must be a positive multiple of 4"
        ));
    }
    let vec4s = len / 4;
    Kernel::new(
        gpu,
        shader!("peak/copy"),
        "main",
        &consts![LEN = vec4s, WG = WG],
        per_elem(vec4s),
        vec![("input", len), ("output", len)],
    )
}

/// Bytes one run of `copy` over `len` f32 moves: each read once and written once.
pub fn copy_bytes(len: usize) -> f64 {
    (len * 8) as f64
}
