//! Elementwise ops: the ReLU gradient and dropout, whose mask comes from a counter-based
//! hash. The kernels state the same hash on their own (kernels/elementwise/dropout.rs):
//! the reference shares no code with them.

use super::{f, Real};

/// Gradient of ReLU given its output y: dy where y > 0, else 0.
pub fn relu_backward<T: Real>(y: &[T], dy: &[T]) -> Vec<T> {
    y.iter()
        .zip(dy)
        .map(|(y, g)| if f(*y) > 0.0 { *g } else { T::of(0.0) })
        .collect()
}

/// The dropout mask's counter-based random bits for element `i` under `seed`: a 32-bit
/// hash (MurmurHash3's finaliser over a golden-ratio counter), the same in WGSL, so the GPU
/// regenerates the forward's mask in the backward pass without storing it.
pub fn dropout_bits(seed: u32, i: u32) -> u32 {
    let mut h = i.wrapping_mul(0x9E37_79B9) ^ seed;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85EB_CA6B);
    h ^= h >> 13;
    h = h.wrapping_mul(0xC2B2_AE35);
    h ^= h >> 16;
    h
}

/// The bits threshold for dropping with probability `p`: p * 2^32, rounded.
pub fn dropout_threshold(p: f64) -> u32 {
    (p * 4_294_967_296.0).round().min(u32::MAX as f64) as u32
}

/// Whether element `i` is kept: its bits are at least the threshold.
pub fn dropout_keep(seed: u32, i: u32, p: f64) -> bool {
    dropout_bits(seed, i) >= dropout_threshold(p)
}

/// Dropout (inverted: kept elements scaled by 1 / (1 - p)); the same call on dy gives the
/// backward pass.
pub fn dropout<T: Real>(x: &[T], p: f64, seed: u32) -> Vec<T> {
    x.iter()
        .enumerate()
        .map(|(i, v)| {
            if dropout_keep(seed, i as u32, p) {
                T::of(f(*v) / (1.0 - p))
            } else {
                T::of(0.0)
            }
        })
        .collect()
}
