// Inverted dropout with a counter-based mask: element i is kept when hash(seed, i) is at
// least THRESH (P * 2^32, rounded), and kept elements are scaled by 1 / (1 - P). The hash
// (MurmurHash3's finaliser over a golden-ratio counter) matches the CPU reference, and the
// backward pass is this same kernel on dy with the same seed: no mask is stored. The seed
// comes from a buffer so every step draws a new mask without a new pipeline.

#include "kernel/elements"

override LEN: u32;
override P: f32;
override THRESH: u32;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> seed: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn bits(s: u32, i: u32) -> u32 {
    var h = (i * 0x9E3779B9u) ^ s;
    h ^= h >> 16u;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13u;
    h *= 0xC2B2AE35u;
    h ^= h >> 16u;
    return h;
}

fn elements() -> u32 { return LEN; }

fn element(i: u32) {
    let keep = bits(seed[0], i) >= THRESH;
    y[i] = select(0.0, x[i] / (1.0 - P), keep);
}
