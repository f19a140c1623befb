// Batch norm in training form, step 1: per-channel batch mean and inverse standard
// deviation (biased variance, as the normalisation uses), and PyTorch's running-statistics
// update with MOMENTUM and the unbiased variance. Two passes over the channel inside one
// workgroup (sum, then squared deviations), which keeps the variance accurate.

#include "kernel/workgroups"
#include "kernel/planes"

override EPS: f32 = 1e-5;
override MOMENTUM: f32 = 0.1;
const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> stats: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> running_var: array<f32>;

var<workgroup> red: array<f32, WG>;

fn reduce(lid: u32, v: f32) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s /= 2u) {
        if (lid < s) { red[lid] += red[lid + s]; }
        workgroupBarrier();
    }
    let total = red[0];
    workgroupBarrier();
    return total;
}

// One workgroup per channel.
fn work_groups() -> u32 {
    return C;
}

fn work_group(c: u32, lid: u32) {
    let cnt = f32(N * HW);
    var s = 0.0;
    for (var n = 0u; n < N; n++) {
        for (var p = lid; p < HW; p += WG) { s += x[(n * C + c) * HW + p]; }
    }
    let mean = reduce(lid, s) / cnt;
    var q = 0.0;
    for (var n = 0u; n < N; n++) {
        for (var p = lid; p < HW; p += WG) {
            let d = x[(n * C + c) * HW + p] - mean;
            q += d * d;
        }
    }
    let var_b = reduce(lid, q) / cnt;
    if (lid == 0u) {
        stats[c] = vec2<f32>(mean, 1.0 / sqrt(var_b + EPS));
        let unbiased = var_b * cnt / max(cnt - 1.0, 1.0);
        running_mean[c] = (1.0 - MOMENTUM) * running_mean[c] + MOMENTUM * mean;
        running_var[c] = (1.0 - MOMENTUM) * running_var[c] + MOMENTUM * unbiased;
    }
}
