// A convolution's weight gradient (stride 1, padding KS / 2), canonical layout, for
// batches of few pixels (gemm.wgsl is the GEMM for the others):
// out[co, ci, ky, kx] (+)= sum over n, y, x of dy[n, co, y, x] * x[n, ci, y + ky - pad,
// x + kx - pad]. One invocation per (co, ci) pair computes all KS x KS taps, so each dy
// load feeds KS * KS multiply-adds. ACCUMULATE adds to dw (gradient accumulation).

#include "conv/backward_weight/header"

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let pair = (wid.x + wid.z * nwg.x) * WG + lid;
    if (pair >= C_OUT * C_IN) { return; }
    let co = pair / C_IN;
    let ci = pair % C_IN;
    let pad = i32(KS / 2u);
    let base = (co * C_IN + ci) * KS * KS;
    // Summed onto what dw holds (ACCUMULATE) image by image, in order: a batch run in
    // groups of images adds the same terms in the same order as the whole batch.
    var acc: array<f32, 9>;
    for (var t = 0u; t < 9u; t++) {
        acc[t] = select(0.0, out[base + min(t, KS * KS - 1u)], ACCUMULATE && t < KS * KS);
    }
    for (var n = 0u; n < N; n++) {
        let gplane = (n * C_OUT + co) * H * W;
        let xplane = (n * C_IN + ci) * H * W;
        for (var y = 0u; y < H; y++) {
            for (var x = 0u; x < W; x++) {
                let g = dy[gplane + y * W + x];
                for (var ky = 0u; ky < KS; ky++) {
                    let iy = i32(y) + i32(ky) - pad;
                    if (iy < 0 || iy >= i32(H)) { continue; }
                    for (var kx = 0u; kx < KS; kx++) {
                        let ix = i32(x) + i32(kx) - pad;
                        if (ix < 0 || ix >= i32(W)) { continue; }
                        acc[ky * KS + kx] += g * input[xplane + u32(iy) * W + u32(ix)];
                    }
                }
            }
        }
    }
    for (var t = 0u; t < KS * KS; t++) { out[base + t] = acc[t]; }
}
