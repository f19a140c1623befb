// Softmax cross-entropy, forward and backward in one pass per row: stats[r] = (loss of row
// r, 1 if its argmax is its label else 0), and dz = (softmax(z) - onehot(label)) * SCALE *
// S (SCALE = 1 / logical batch, so micro-batch gradients add up to the batch mean; S =
// hyper[3], the loss scale of mixed-precision training, 1 in f32, read from the trainer's
// hyperparameter buffer because it changes from step to step). One workgroup per row;
// max-shifted for stability; ties in the argmax go to the lowest class.

#include "kernel/workgroups"

override ROWS: u32;
override COLS: u32;
override SCALE: f32;
const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> z: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<u32>;
@group(0) @binding(2) var<storage, read_write> dz: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read> hyper: array<f32>;

var<workgroup> red: array<f32, WG>;
var<workgroup> arg: array<u32, WG>;

// One workgroup per row.
fn work_groups() -> u32 {
    return ROWS;
}

fn work_group(r: u32, lid: u32) {
    let base = r * COLS;
    var m = -3.4e38;
    var a = 0u;
    for (var c = lid; c < COLS; c += WG) {
        let v = z[base + c];
        if (v > m) { m = v; a = c; }
    }
    red[lid] = m;
    arg[lid] = a;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if (lid < s) {
            let o = lid + s;
            if (red[o] > red[lid] || (red[o] == red[lid] && arg[o] < arg[lid])) {
                red[lid] = red[o];
                arg[lid] = arg[o];
            }
        }
        workgroupBarrier();
    }
    let mx = red[0];
    let best = arg[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var c = lid; c < COLS; c += WG) { sum += exp(z[base + c] - mx); }
    red[lid] = sum;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if (lid < s) { red[lid] += red[lid + s]; }
        workgroupBarrier();
    }
    let total = red[0];
    let label = labels[r];
    for (var c = lid; c < COLS; c += WG) {
        let p = exp(z[base + c] - mx) / total;
        dz[base + c] = (p - select(0.0, 1.0, c == label)) * SCALE * hyper[3];
    }
    if (lid == 0u) {
        stats[r] = vec2<f32>(log(total) + mx - z[base + label], select(0.0, 1.0, best == label));
    }
}
