// 2x2 max pooling's gradient, as a gather: each input element takes its window's output
// gradient if it is that window's argmax (PyTorch's flat index iy * W + ix), else 0, so
// every element is written and no atomics are needed (the windows do not overlap). One
// invocation per input element.

#include "kernel/elements"

#include "kernel/nchw"

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> argmax: array<u32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

fn elements() -> u32 { return N * C * H * W; }

fn element(i: u32) {
    let plane = i / (H * W);
    let r = i % (H * W);
    let iy = r / W;
    let ix = r % W;
    let oh = H / 2u;
    let ow = W / 2u;
    var g = 0.0;
    if (iy / 2u < oh && ix / 2u < ow) {
        let o = (plane * oh + iy / 2u) * ow + ix / 2u;
        if (argmax[o] == r) { g = dy[o]; }
    }
    dx[i] = g;
}
