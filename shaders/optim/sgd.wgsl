// One fused SGD step with momentum and weight decay, PyTorch's semantics (dampening 0):
// d = g + wd * w; v = momentum * v + d; w -= lr * v. The hyperparameters come from a
// buffer (lr, momentum, wd) so a schedule changes them without new pipelines.

#include "kernel/elements"

override LEN: u32;

@group(0) @binding(0) var<storage, read_write> w: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;
@group(0) @binding(3) var<storage, read> hyper: array<f32>;

fn elements() -> u32 { return LEN; }

fn element(i: u32) {
    let d = g[i] + hyper[2] * w[i];
    let vi = hyper[1] * v[i] + d;
    v[i] = vi;
    w[i] = w[i] - hyper[0] * vi;
}
