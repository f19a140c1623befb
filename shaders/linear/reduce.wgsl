// Fully connected layer for GPUs, on one row chunk of the weight (see rows.wgsl for the
// layout): a workgroup computes R = 4 output features for up to TM = 8 batch rows. Its WG
// invocations stride over k, so consecutive invocations read consecutive weights (coalesced
// loads), and a tree in workgroup memory sums their partial dot products. The weight is read
// once per 8 batch rows by ROWS / 4 x ceil(M / 8) workgroups: 1024 for VGG16's fc6 at batch
// 1, where rows.wgsl's one invocation per output tile launches 16 workgroups and leaves a
// GPU all but idle. WG must be a power of two, at most 128.

#include "linear/header"
#include "kernel/workgroups"

override WG: u32 = 128u;
// Batch rows actually held per workgroup: min(M, TM), so a batch of 1 loads x once per k.
override TMV: u32 = 8u;

const TM: u32 = 8u;
const R: u32 = 4u;
const WG_MAX: u32 = 128u;

// Partial sums of the TM x R outputs, one column per invocation.
var<workgroup> partial: array<f32, TM * R * WG_MAX>;

// Workgroups over (output rows in tiles of R) x (batch rows in tiles of TMV).
fn work_groups() -> u32 {
    return (ROWS + R - 1u) / R * ((M + TMV - 1u) / TMV);
}

fn work_group(tile: u32, lid: u32) {
    let mtiles = (M + TMV - 1u) / TMV;
    // Neighbouring workgroups take the same weight rows for different batch rows, so a
    // large batch reads each weight row from memory about once and from cache after.
    let m0 = (tile % mtiles) * TMV;
    let r0 = (tile / mtiles) * R;
    var xr: array<u32, TM>;
    for (var i = 0u; i < TMV; i++) { xr[i] = min(m0 + i, M - 1u) * K; }
    var wr: array<u32, R>;
    for (var j = 0u; j < R; j++) { wr[j] = min(r0 + j, ROWS - 1u) * K; }
    var acc: array<vec4<f32>, TM>;
    for (var k = lid; k < K; k += WG) {
        let w = vec4<f32>(f32(weight[wr[0] + k]), f32(weight[wr[1] + k]),
                          f32(weight[wr[2] + k]), f32(weight[wr[3] + k]));
        for (var i = 0u; i < TMV; i++) {
            acc[i] = fma(vec4<f32>(f32(x[xr[i] + k])), w, acc[i]);
        }
    }
    for (var i = 0u; i < TMV; i++) {
        for (var j = 0u; j < R; j++) {
            partial[(i * R + j) * WG + lid] = acc[i][j];
        }
    }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s / 2u) {
        if (lid < s) {
            for (var o = 0u; o < TMV * R; o++) {
                partial[o * WG + lid] += partial[o * WG + lid + s];
            }
        }
        workgroupBarrier();
    }
    if (lid < TMV * R) {
        let i = lid / R;
        let j = lid % R;
        if (m0 + i < M && r0 + j < ROWS) {
            let o = ROW0 + r0 + j;
            var y = partial[lid * WG] + f32(bias[o]);
            if (RELU) { y = relu(y); }
            output[(m0 + i) * N_OUT + o] = S(y);
        }
    }
}
