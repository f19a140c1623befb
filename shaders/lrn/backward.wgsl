// Local response normalisation backward (PyTorch's LocalResponseNorm), per element j:
// dx_j = dy_j * d_j^-BETA - 2 ALPHA BETA / SIZE * x_j * sum over channels i whose window
// holds j of dy_i * x_i * d_i^(-BETA - 1), where d_i = K + ALPHA / SIZE * (sum of squares
// over i's window). Each d_i is recomputed (SIZE loads), so no forward state is stored.

#include "kernel/planes"

override SIZE: u32;
override ALPHA: f32;
override BETA: f32;
override K: f32;
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

fn denom(base: u32, i: u32) -> f32 {
    let lo = SIZE / 2u;
    let hi = (SIZE - 1u) / 2u;
    var sq = 0.0;
    for (var j = select(0u, i - lo, i >= lo); j <= min(i + hi, C - 1u); j++) {
        let v = x[base + j * HW];
        sq += v * v;
    }
    return K + ALPHA / f32(SIZE) * sq;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let e = (wid.x + wid.z * nwg.x) * WG + lid;
    if (e >= N * C * HW) { return; }
    let p = e % HW;
    let j = (e / HW) % C;
    let n = e / (HW * C);
    let base = n * C * HW + p;
    let lo = SIZE / 2u;
    let hi = (SIZE - 1u) / 2u;
    var cross = 0.0;
    for (var i = select(0u, j - hi, j >= hi); i <= min(j + lo, C - 1u); i++) {
        let at = base + i * HW;
        cross += dy[at] * x[at] * pow(denom(base, i), -BETA - 1.0);
    }
    dx[e] = dy[e] * pow(denom(base, j), -BETA) - 2.0 * ALPHA * BETA / f32(SIZE) * x[e] * cross;
}
