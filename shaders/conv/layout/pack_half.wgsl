// Packs a conv weight into the layout the plain, workgroup-memory and subgroup forward
// kernels read (conv/layout/blocked), as f16: inference's f16 storage. One invocation per
// pair of packed elements, written as one u32 by pack2x16float (low half first), so the
// kernel needs no shader-f16 of its own.

#include "kernel/elements"
#include "conv/layout/blocked"

@group(0) @binding(1) var<storage, read_write> dst: array<u32>;

fn elements() -> u32 { return (packed_len() + 1u) / 2u; }

fn element(i: u32) {
    let j = 2u * i;
    var hi = 0.0;
    if (j + 1u < packed_len()) { hi = packed_value(j + 1u); }
    dst[i] = pack2x16float(vec2<f32>(packed_value(j), hi));
}
