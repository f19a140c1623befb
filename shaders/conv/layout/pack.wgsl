// Packs a conv weight into the layout the plain, workgroup-memory and subgroup forward
// kernels read (conv/layout/blocked), as f32: the one preparation of these weights,
// for inference once at upload and for training once per step (training keeps weights in
// the canonical layout, where the optimizer and the gradient kernels work). One invocation
// per packed element.

#include "kernel/elements"
#include "conv/layout/blocked"

@group(0) @binding(1) var<storage, read_write> dst: array<f32>;

fn elements() -> u32 { return packed_len(); }

fn element(i: u32) {
    dst[i] = packed_value(i);
}
