// Convolution (kernel 1 or 3, stride 1, same padding) as an implicit GEMM, for GPUs:
// out[co, p] = bias[co] + sum_k w[k, co] * patch[k, p], k = (ci, ky, kx) and p = (image, y, x).
// A workgroup of 256 invocations computes a tile of BM = 128 output channels x BN = 128
// pixels, each invocation an 8 x 8 block of it in registers. Per step of BK = 8 values of
// k, the workgroup stages the weight tile and the gathered input patches (zero outside the
// image) in workgroup memory; every staged value then feeds 8 FMAs from registers, where
// the direct kernels load a weight per FMA or two.
//
// Weights are packed as for direct.wgsl with TM = 128: [c_out / 128][c_in][k][k][128],
// so that a k row of the weight tile is 128 consecutive values. The bias is padded to whole
// blocks of 128.

#include "conv/forward/header"

const BM: u32 = 128u;
const BN: u32 = 128u;
const BK: u32 = 8u;

@group(0) @binding(1) var<storage, read> weight: array<S>;

// [BK][BM / 4] and [BK][BN / 4].
var<workgroup> a_tile: array<vec4<f32>, 256>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let kk_len = C_IN * KS * KS;
    let hw = H * W;
    let pixels = N * hw;
    let tile = wid.x + wid.z * nwg.x;
    // Uniform per workgroup, so the barriers below stay in uniform control flow.
    if (tile * BN >= pixels) { return; }
    let p0 = tile * BN;
    let block = wid.y;
    let tx = lid % 16u;
    let ty = lid / 16u;

    // This invocation's staging: one vec4 of weights at row a_row, and the input patch of
    // one pixel (column b_col) at rows b_row0, b_row0 + 2, ...
    let a_row = lid / 32u;
    let a_col = lid % 32u;
    let b_col = lid % BN;
    let b_row0 = lid / BN;
    let p = p0 + b_col;
    let p_ok = p < pixels;
    let img = p / hw;
    let y = i32((p % hw) / W);
    let x = i32(p % W);
    let in_base = img * C_IN * hw;
    let pad = i32(KS / 2u);

    var acc: array<vec4<f32>, 16>;
    for (var k0 = 0u; k0 < kk_len; k0 += BK) {
        var a = vec4<f32>(0.0);
        let ka = k0 + a_row;
        if (ka < kk_len) {
            let base = (block * kk_len + ka) * BM + a_col * 4u;
            a = vec4<f32>(f32(weight[base]), f32(weight[base + 1u]), f32(weight[base + 2u]),
                          f32(weight[base + 3u]));
        }
        a_tile[a_row * (BM / 4u) + a_col] = a;
        for (var r = b_row0; r < BK; r += 2u) {
            let k = k0 + r;
            var v = 0.0;
            if (p_ok && k < kk_len) {
                let ci = k / (KS * KS);
                let t = k % (KS * KS);
                let iy = y + i32(t / KS) - pad;
                let ix = x + i32(t % KS) - pad;
                if (iy >= 0 && iy < i32(H) && ix >= 0 && ix < i32(W)) {
                    v = f32(input[in_base + ci * hw + u32(iy) * W + u32(ix)]);
                }
            }
            b_tile[r * (BN / 4u) + b_col / 4u][b_col % 4u] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let a0 = a_tile[kk * (BM / 4u) + ty * 2u];
            let a1 = a_tile[kk * (BM / 4u) + ty * 2u + 1u];
            let b0 = b_tile[kk * (BN / 4u) + tx * 2u];
            let b1 = b_tile[kk * (BN / 4u) + tx * 2u + 1u];
            acc[0] = fma(vec4<f32>(a0.x), b0, acc[0]);
            acc[1] = fma(vec4<f32>(a0.x), b1, acc[1]);
            acc[2] = fma(vec4<f32>(a0.y), b0, acc[2]);
            acc[3] = fma(vec4<f32>(a0.y), b1, acc[3]);
            acc[4] = fma(vec4<f32>(a0.z), b0, acc[4]);
            acc[5] = fma(vec4<f32>(a0.z), b1, acc[5]);
            acc[6] = fma(vec4<f32>(a0.w), b0, acc[6]);
            acc[7] = fma(vec4<f32>(a0.w), b1, acc[7]);
            acc[8] = fma(vec4<f32>(a1.x), b0, acc[8]);
            acc[9] = fma(vec4<f32>(a1.x), b1, acc[9]);
            acc[10] = fma(vec4<f32>(a1.y), b0, acc[10]);
            acc[11] = fma(vec4<f32>(a1.y), b1, acc[11]);
            acc[12] = fma(vec4<f32>(a1.z), b0, acc[12]);
            acc[13] = fma(vec4<f32>(a1.z), b1, acc[13]);
            acc[14] = fma(vec4<f32>(a1.w), b0, acc[14]);
            acc[15] = fma(vec4<f32>(a1.w), b1, acc[15]);
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 8u; i++) {
        let co = block * BM + ty * 8u + i;
        if (co >= C_OUT) { break; }
        let b = f32(bias[co]);
        for (var j = 0u; j < 8u; j++) {
            let pp = p0 + tx * 8u + j;
            if (pp >= pixels) { break; }
            var v = acc[i * 2u + j / 4u][j % 4u] + b;
            if (RELU) { v = relu(v); }
            output[((pp / hw) * C_OUT + co) * hw + pp % hw] = S(v);
        }
    }
}
