// Direct convolution like direct.wgsl, with the weights staged through workgroup
// memory: for each chunk of CI_T input channels the workgroup copies the chunk's
// CI_T x KS x KS x TM weights into `wtile` together, then every invocation reads them from
// there. The classic GPU tiling of the weight operand; kept to measure it against
// register blocking on each adapter (README: it loses on lavapipe, where workgroup memory
// loads cost as much as storage loads and barriers switch coroutines).
//
// Weights use direct.wgsl's packed layout [C_OUT / TM][C_IN][KS][KS][TM].

#include "conv/forward/header"

override WG: u32 = 64u;
override TM: u32 = 8u;

const TN: u32 = 4u;
const TM_MAX: u32 = 16u;
const CI_T: u32 = 8u;

@group(0) @binding(1) var<storage, read> weight: array<S>;

var<workgroup> wtile: array<f32, 1152>; // CI_T * 9 * TM_MAX

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let gx = (W + TN - 1u) / TN;
    let tiles = (H * gx + WG - 1u) / WG;
    let linear = wid.x + wid.z * nwg.x;
    // Workgroup-uniform exit, so the barriers below stay in uniform control flow.
    if (linear >= N * tiles) { return; }
    let n = linear / tiles;
    let g = (linear % tiles) * WG + lid;
    let valid = g < H * gx;
    let y = g / gx;
    let x0 = (g % gx) * TN;
    let co0 = wid.y * TM;
    let kk = KS * KS;

    var acc: array<vec4<f32>, TM_MAX>;
    for (var m = 0u; m < TM; m++) {
        acc[m] = vec4<f32>(f32(bias[co0 + m]));
    }
    let pad = i32(KS / 2u);
    let wblock = wid.y * C_IN * kk * TM;
    for (var c0 = 0u; c0 < C_IN; c0 += CI_T) {
        let chunk = min(CI_T, C_IN - c0) * kk * TM;
        workgroupBarrier();
        for (var t = lid; t < chunk; t += WG) {
            wtile[t] = f32(weight[wblock + c0 * kk * TM + t]);
        }
        workgroupBarrier();
        for (var cc = 0u; cc < min(CI_T, C_IN - c0); cc++) {
            let plane = (n * C_IN + c0 + cc) * H * W;
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
                    let wb = ((cc * KS + ky) * KS + kx) * TM;
                    for (var m = 0u; m < TM; m++) {
                        acc[m] = fma(vec4<f32>(wtile[wb + m]), v, acc[m]);
                    }
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
