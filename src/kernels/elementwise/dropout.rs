//! Inverted dropout, forward and backward alike (shaders/elementwise/dropout.wgsl). The
//! mask comes from a counter-based hash that the shader states too, so the backward pass
//! regenerates the forward's mask instead of storing it. The reference states the same hash
//! on its own (reference/elementwise.rs): the kernels share no code with it.

use crate::error::{shape_err, Result};
use crate::gpu::Gpu;
use crate::kernels::{per_elem, shader, Kernel, WG};

/// The hash's 32 bits for element `i` under `seed` (MurmurHash3's finaliser over a
/// golden-ratio counter, as in the shader). The trainer also draws each step's seeds from it.
pub fn dropout_bits(seed: u32, i: u32) -> u32 {
    let mut h = i.wrapping_mul(0x9E37_79B9) ^ seed;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^= h >> 16;
    h
}

/// Bits below this are dropped: p * 2^32, rounded.
fn threshold(p: f64) -> u32 {
    (p * 4_294_967_296.0).round().min(u32::MAX as f64) as u32
}

/// Dropout with probability `p` (forward on x, or backward on dy with the same seed):
/// buffers (x, seed `[1]`, y).
pub fn dropout(gpu: &Gpu, len: usize, p: f64) -> Result<Kernel> {
    if !(0.0..1.0).contains(&p) {
        return Err(shape_err!("dropout probability {p} must be in [0, 1)"));
    }
    Kernel::new(
        gpu,
        shader!("elementwise/dropout"),
        "main",
        &consts![LEN = len, P = p, THRESH = threshold(p), WG = WG],
        per_elem(len),
        vec![("x", len), ("seed", 1), ("y", len)],
    )
}
