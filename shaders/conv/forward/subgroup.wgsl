// Direct convolution like direct.wgsl, but the TM = 8 output channels' weights are
// loaded once per subgroup and shared by broadcast: lane l loads the taps of channel
// (l mod 8) for one input row as a vec4 (kx = 0, 1, 2, pad), and every lane takes each
// channel's taps with subgroupBroadcast. Needs subgroups of at least 8 lanes.
//
// Why: on SIMD-on-CPU drivers (Mesa lavapipe) every storage-buffer load, uniform or not,
// is a per-lane scalar loop, so the cost of a kernel is its element loads per FMA. Here a
// row step costs KS + 3 input loads and one vec4 weight load per lane for 3 * 8 * 4 FMAs,
// against 3 * 8 scalar weight loads in the plain kernel; a broadcast is a register shuffle.
//
// Weights are packed as [C_OUT / 8][C_IN][KS][8][4] (zero padded), bias padded to 8.

// No `enable subgroups;`: naga 30 rejects the directive and takes the builtins without it.

#include "conv/forward/header"

override WG: u32 = 64u;

const TN: u32 = 4u;
const TM: u32 = 8u;

@group(0) @binding(1) var<storage, read> weight: array<vec4<S>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sid: u32) {
    let gx = (W + TN - 1u) / TN;
    let tiles = (H * gx + WG - 1u) / WG;
    let linear = wid.x + wid.z * nwg.x;
    // Whole workgroups exit together, so subgroups stay full for the broadcasts.
    if (linear >= N * tiles) { return; }
    let n = linear / tiles;
    let g = (linear % tiles) * WG + lid;
    let valid = g < H * gx;
    let y = g / gx;
    let x0 = (g % gx) * TN;
    let co0 = wid.y * TM;
    let lane = sid % TM;

    var acc: array<vec4<f32>, TM>;
    for (var m = 0u; m < TM; m++) {
        acc[m] = vec4<f32>(f32(bias[co0 + m]));
    }
    let pad = i32(KS / 2u);
    let wblock = wid.y * C_IN * KS;
    for (var ci = 0u; ci < C_IN; ci++) {
        let plane = (n * C_IN + ci) * H * W;
        for (var ky = 0u; ky < KS; ky++) {
            let iy = i32(y) + i32(ky) - pad;
            let row_ok = valid && iy >= 0 && iy < i32(H);
            let row = plane + u32(max(iy, 0)) * W;
            var r: array<f32, 6>;
            for (var j = 0u; j < TN + KS - 1u; j++) {
                let ix = i32(x0 + j) - pad;
                let ok = row_ok && ix >= 0 && ix < i32(W);
                r[j] = select(0.0, f32(input[row + u32(clamp(ix, 0, i32(W) - 1))]), ok);
            }
            let wv = vec4<f32>(weight[((wblock + ci * KS + ky) * TM) + lane]);
            let v0 = vec4<f32>(r[0], r[1], r[2], r[3]);
            if (KS == 3u) {
                let v1 = vec4<f32>(r[1], r[2], r[3], r[4]);
                let v2 = vec4<f32>(r[2], r[3], r[4], r[5]);
                for (var m = 0u; m < TM; m++) {
                    let t = subgroupShuffle(wv, m);
                    acc[m] = fma(vec4<f32>(t.x), v0, fma(vec4<f32>(t.y), v1, fma(vec4<f32>(t.z), v2, acc[m])));
                }
            } else {
                for (var m = 0u; m < TM; m++) {
                    let t = subgroupShuffle(wv, m);
                    acc[m] = fma(vec4<f32>(t.x), v0, acc[m]);
                }
            }
        }
    }
    if (!valid) { return; }
    for (var m = 0u; m < TM; m++) {
        let co = co0 + m;
        if (co >= C_OUT) { break; }
        var a = acc[m];
        if (RELU) { a = relu4(a); }
        let o = ((n * C_OUT + co) * H + y) * W + x0;
        for (var j = 0u; j < TN; j++) {
            if (x0 + j < W) { output[o + j] = S(a[j]); }
        }
    }
}
