// Direct convolution (kernel KS x KS, stride 1, padding KS/2), register-blocked, no
// workgroup memory.
//
// Each invocation computes TN = 4 horizontally adjacent output pixels (one vec4) for TM
// output channels. The output-channel block comes from the workgroup id, so every weight
// load has the same address across the workgroup: on SIMD-on-CPU drivers (lavapipe) that is
// one scalar load and a broadcast, and the only per-lane loads are the KS + 3 input values a
// row step needs, each reused by 3 * TM FMAs.
//
// Weights are packed at load time as [C_OUT / TM][C_IN][KS][KS][TM] (zero padded to a
// multiple of TM), so a workgroup reads one contiguous run of weights. Bias is padded too.

#include "conv/forward/header"

override WG: u32 = 64u;
override TM: u32 = 8u;

const TN: u32 = 4u;
const TM_MAX: u32 = 16u;

@group(0) @binding(1) var<storage, read> weight: array<S>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let gx = (W + TN - 1u) / TN;          // pixel groups per row
    let tiles = (H * gx + WG - 1u) / WG;  // workgroups per image
    // Images x tiles are folded over dispatch x and z so no dimension passes 65535.
    let linear = wid.x + wid.z * nwg.x;
    if (linear >= N * tiles) { return; }
    let n = linear / tiles;
    let g = (linear % tiles) * WG + lid;
    let valid = g < H * gx;
    let y = g / gx;
    let x0 = (g % gx) * TN;
    let co0 = wid.y * TM;

    var acc: array<vec4<f32>, TM_MAX>;
    for (var m = 0u; m < TM; m++) {
        acc[m] = vec4<f32>(f32(bias[co0 + m]));
    }
    let pad = i32(KS / 2u);
    let wblock = wid.y * C_IN * KS * KS * TM;
    for (var ci = 0u; ci < C_IN; ci++) {
        let plane = (n * C_IN + ci) * H * W;
        for (var ky = 0u; ky < KS; ky++) {
            let iy = i32(y) + i32(ky) - pad;
            let row_ok = valid && iy >= 0 && iy < i32(H);
            let row = plane + u32(max(iy, 0)) * W;
            var r: array<f32, 8>;
            for (var j = 0u; j < TN + KS - 1u; j++) {
                let ix = i32(x0 + j) - pad;
                let ok = row_ok && ix >= 0 && ix < i32(W);
                r[j] = select(0.0, f32(input[row + u32(clamp(ix, 0, i32(W) - 1))]), ok);
            }
            for (var kx = 0u; kx < KS; kx++) {
                let v = vec4<f32>(r[kx], r[kx + 1u], r[kx + 2u], r[kx + 3u]);
                let wb = wblock + ((ci * KS + ky) * KS + kx) * TM;
                for (var m = 0u; m < TM; m++) {
                    acc[m] = fma(vec4<f32>(f32(weight[wb + m])), v, acc[m]);
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
