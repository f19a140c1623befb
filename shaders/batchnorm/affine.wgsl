// Per-channel y = x * scale[c] + shift[c], optional ReLU: batch norm in inference form,
// with scale = gamma / sqrt(var + eps) and shift = beta - mean * scale computed on the host.

#include "kernel/elements"

#include "kernel/planes"

#include "kernel/relu"

@group(0) @binding(0) var<storage, read> input: array<S>;
@group(0) @binding(1) var<storage, read> scale: array<S>;
@group(0) @binding(2) var<storage, read> shift: array<S>;
@group(0) @binding(3) var<storage, read_write> output: array<S>;

fn elements() -> u32 { return N * C * HW; }

fn element(i: u32) {
    let c = (i / HW) % C;
    var y = fma(f32(input[i]), f32(scale[c]), f32(shift[c]));
    if (RELU) { y = relu(y); }
    output[i] = S(y);
}
