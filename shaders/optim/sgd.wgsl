// One fused SGD step with momentum and weight decay, PyTorch's semantics (dampening 0):
// d = g / S + wd * w; v = momentum * v + d; w -= lr * v. The hyperparameters come from a
// buffer so a schedule changes them without new pipelines: [lr, momentum, wd, S, 1 / S,
// overflow], where S is the loss scale of mixed-precision training (1 in f32, where
// g * 1 is g exactly) and a nonzero overflow word (set by optim/overflow over every
// gradient of the step) skips the step, leaving weights and momentum as they were, as
// AMP's GradScaler does.

#include "kernel/elements"

override LEN: u32;

@group(0) @binding(0) var<storage, read_write> w: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;
@group(0) @binding(3) var<storage, read> hyper: array<f32>;

fn elements() -> u32 { return LEN; }

fn element(i: u32) {
    if (bitcast<u32>(hyper[5]) != 0u) { return; }
    let d = g[i] * hyper[4] + hyper[2] * w[i];
    let vi = hyper[1] * v[i] + d;
    v[i] = vi;
    w[i] = w[i] - hyper[0] * vi;
}
