// The adapter's memory bandwidth: a vec4 copy, one element (LEN vec4 in all) per
// invocation. Traffic: twice the buffer size.

#include "kernel/elements"

@group(0) @binding(0) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> output: array<vec4<f32>>;

override LEN: u32;

fn elements() -> u32 { return LEN; }

fn element(i: u32) {
    output[i] = input[i];
}
