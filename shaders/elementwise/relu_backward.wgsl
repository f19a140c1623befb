// ReLU's gradient from its output: dx = dy where y > 0, else 0. One invocation per element.

#include "kernel/elements"

override LEN: u32;

@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

fn elements() -> u32 { return LEN; }

fn element(i: u32) {
    dx[i] = select(0.0, dy[i], y[i] > 0.0);
}
