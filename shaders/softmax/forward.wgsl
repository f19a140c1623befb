// Softmax over the last dimension of a [ROWS, COLS] matrix, one workgroup per row:
// a workgroup reduction finds the row maximum, a second the sum of exp(x - max).

#include "kernel/workgroups"

override ROWS: u32;
override COLS: u32;
const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> input: array<S>;
@group(0) @binding(1) var<storage, read_write> output: array<S>;

var<workgroup> red: array<f32, WG>;

fn reduce_max(v: f32, lid: u32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

fn reduce_sum(v: f32, lid: u32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

// One workgroup per row.
fn work_groups() -> u32 {
    return ROWS;
}

fn work_group(row: u32, lid: u32) {
    let base = row * COLS;
    var m = -3.402823e38;
    for (var c = lid; c < COLS; c += WG) { m = max(m, f32(input[base + c])); }
    m = reduce_max(m, lid);
    var s = 0.0;
    for (var c = lid; c < COLS; c += WG) { s += exp(f32(input[base + c]) - m); }
    s = reduce_sum(s, lid);
    let inv = 1.0 / s;
    for (var c = lid; c < COLS; c += WG) { output[base + c] = S(exp(f32(input[base + c]) - m) * inv); }
}
