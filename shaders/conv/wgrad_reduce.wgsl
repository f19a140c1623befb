// The second pass of the split-K weight gradient (wgrad.wgsl): dw (+)= the sum of the
// chunks' partial gradients, added in chunk order so the result does not depend on
// scheduling. One invocation per weight element.

#include "kernel/elements"

override LEN: u32;
override CHUNKS: u32;
override ACCUMULATE: bool = false;

@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read_write> dw: array<f32>;

fn elements() -> u32 {
    return LEN;
}

fn element(i: u32) {
    var s = 0.0;
    for (var c = 0u; c < CHUNKS; c++) { s += partial[c * LEN + i]; }
    if (ACCUMULATE) { dw[i] += s; } else { dw[i] = s; }
}
