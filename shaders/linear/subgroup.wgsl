// rows.wgsl with TM = 8 batch rows per invocation whose inputs are shared by the subgroup:
// lane l loads x[m0 + l mod 8, k] and every lane takes all eight by subgroupShuffle. A k
// step then costs 1 + 4 loads per lane for 32 FMAs (see subgroup.wgsl for why loads
// are what counts on SIMD-on-CPU drivers). Needs subgroups of at least 8 lanes.

#include "linear/header"

override WG: u32 = 64u;

const TM: u32 = 8u;
const TN: u32 = 4u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sid: u32) {
    let otiles = (ROWS + TN * WG - 1u) / (TN * WG);
    let linear = wid.x + wid.z * nwg.x;
    // Whole workgroups exit together, so subgroups stay full for the shuffles.
    if (linear >= otiles * ((M + TM - 1u) / TM)) { return; }
    let m0 = (linear / otiles) * TM;
    let r0 = ((linear % otiles) * WG + lid) * TN;
    let xrow = min(m0 + sid % TM, M - 1u) * K;
    var wr: array<u32, TN>;
    for (var j = 0u; j < TN; j++) { wr[j] = min(r0 + j, ROWS - 1u) * K; }
    var acc: array<vec4<f32>, TM>;
    for (var k = 0u; k < K; k++) {
        let wv = vec4<f32>(f32(weight[wr[0] + k]), f32(weight[wr[1] + k]), f32(weight[wr[2] + k]), f32(weight[wr[3] + k]));
        let xv = f32(x[xrow + k]);
        for (var i = 0u; i < TM; i++) {
            acc[i] = fma(vec4<f32>(subgroupShuffle(xv, i)), wv, acc[i]);
        }
    }
    for (var i = 0u; i < TM; i++) {
        if (m0 + i >= M) { break; }
        for (var j = 0u; j < TN; j++) {
            if (r0 + j >= ROWS) { break; }
            let o = ROW0 + r0 + j;
            var y = acc[i][j] + f32(bias[o]);
            if (RELU) { y = relu(y); }
            output[(m0 + i) * N_OUT + o] = S(y);
        }
    }
}
