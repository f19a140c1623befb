// A convolution's input gradient (stride 1, padding KS / 2) from the canonical weight
// [co, ci, ky, kx]: dx[n, ci, y, x] = sum over co, ky, kx of dy[n, co, y - ky + pad,
// x - kx + pad] * w[co, ci, ky, kx], i.e. the transposed convolution. Each invocation
// computes 4 adjacent pixels of one input channel.

#include "conv/shape"

override WG: u32 = 64u;
const TN: u32 = 4u;

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let gx = (W + TN - 1u) / TN;
    let g = (wid.x + wid.z * nwg.x) * WG + lid;
    if (g >= N * C_IN * H * gx) { return; }
    let x0 = (g % gx) * TN;
    let y = (g / gx) % H;
    let ci = (g / (gx * H)) % C_IN;
    let n = g / (gx * H * C_IN);
    let pad = i32(KS / 2u);
    var acc = vec4<f32>(0.0);
    for (var co = 0u; co < C_OUT; co++) {
        let plane = (n * C_OUT + co) * H * W;
        for (var ky = 0u; ky < KS; ky++) {
            let oy = i32(y) - i32(ky) + pad;
            if (oy < 0 || oy >= i32(H)) { continue; }
            for (var kx = 0u; kx < KS; kx++) {
                let wv = weight[((co * C_IN + ci) * KS + ky) * KS + kx];
                var v = vec4<f32>(0.0);
                for (var j = 0u; j < TN; j++) {
                    let ox = i32(x0 + j) - i32(kx) + pad;
                    if (ox >= 0 && ox < i32(W)) { v[j] = dy[plane + u32(oy) * W + u32(ox)]; }
                }
                acc = fma(vec4<f32>(wv), v, acc);
            }
        }
    }
    let o = ((n * C_IN + ci) * H + y) * W + x0;
    for (var j = 0u; j < TN; j++) {
        if (x0 + j < W) { dx[o + j] = acc[j]; }
    }
}
