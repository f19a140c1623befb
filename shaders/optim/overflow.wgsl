// Mixed-precision training's overflow check: sets the hyperparameter buffer's overflow
// word (index 5, read by optim/sgd) when any element of a gradient is infinite or NaN.
// The gradient is read as bits and the exponent tested as an integer: WGSL lets a
// compiler assume floats are finite, so a float comparison could be folded away.

#include "kernel/elements"

override LEN: u32;

@group(0) @binding(0) var<storage, read> g: array<u32>;
@group(0) @binding(1) var<storage, read_write> hyper: array<atomic<u32>>;

fn elements() -> u32 { return LEN; }

fn element(i: u32) {
    if ((g[i] & 0x7f800000u) == 0x7f800000u) {
        atomicOr(&hyper[5], 1u);
    }
}
