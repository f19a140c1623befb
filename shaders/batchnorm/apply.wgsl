// Batch norm in training form, step 2: y = gamma * (x - mean) * invstd + beta with the
// batch statistics from bn_stats, optionally followed by ReLU. One invocation per element.

#include "kernel/elements"

#include "kernel/planes"

#include "kernel/relu"

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

fn elements() -> u32 { return N * C * HW; }

fn element(i: u32) {
    let c = (i / HW) % C;
    let st = stats[c];
    var v = (x[i] - st.x) * st.y * gamma[c] + beta[c];
    if (RELU) { v = relu(v); }
    y[i] = v;
}
