// The second pass of the split-K weight gradient (gemm.wgsl): dw (+)= the sum of the
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
    // Added one chunk at a time onto what dw holds (ACCUMULATE) or onto 0: the same sums
    // in the same order whether a batch's chunks come in one call or in several.
    var s = select(0.0, dw[i], ACCUMULATE);
    for (var c = 0u; c < CHUNKS; c++) { s += partial[c * LEN + i]; }
    dw[i] = s;
}
