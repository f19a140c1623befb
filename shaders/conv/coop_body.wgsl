// Convolution as an implicit GEMM on 16x16x16 matrix tiles: out[co][q] = sum_k
// W[co][k] * X[k][q] over k = (ci, ky, kx) and q = (n, y, x), the whole batch's pixels.
// The matrix operations come from the file included before this one: cooperative
// matrices (tensor cores, conv/coop_mma) or the same operations done lane by lane
// (conv/coop_mma_emulated, which CI runs on CPU drivers to test this file's tiling).
//
// A workgroup computes a 64 (channels) x 64 (pixels) block with 4 subgroups of 32x32,
// each holding 2x2 accumulator tiles in f32. Per step of 16 along k, the lanes stage the
// block's weights (64x16, f16) and the gathered input (16x64: im2col with the padding as
// zeros, converted to f16) in workgroup memory, which the tiles load from; the staging is
// double-buffered, the next step written while this one's tiles multiply, so a step
// takes one barrier. The output
// goes through workgroup memory too: cooperative matrices have no per-element access, so
// bias, ReLU and the scatter to NCHW run there, one element per lane at a time.
//
// Weights are packed [M_PAD][K_PAD] (row co, column k = (ci * KS + ky) * KS + kx), f16,
// zero padded to whole blocks of 64 rows and 16 columns.

#include "conv/header"

// 4 subgroups: the host sets 4 x the adapter's (fixed) subgroup size.
override WG: u32 = 128u;
override K_PAD: u32;
const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

@group(0) @binding(1) var<storage, read> weight: array<f16>;

// Two buffers of each staged tile (TILE elements apart).
const TILE: u32 = 1024u;
var<workgroup> sa: array<f16, 2048>; // 2 x BM x BK, row-major
var<workgroup> sb: array<f16, 2048>; // 2 x BK x BN, row-major
var<workgroup> sc: array<f32, 4096>; // BM x BN, row-major

// Input element k of pixel q (both past their ends read as 0).
fn gather(k: u32, q: u32) -> f16 {
    let kk = KS * KS;
    let hw = H * W;
    if (k >= C_IN * kk || q >= N * hw) {
        return f16(0.0);
    }
    let ci = k / kk;
    let r = k % kk;
    let pad = i32(KS / 2u);
    let n = q / hw;
    let p = q % hw;
    let iy = i32(p / W) + i32(r / KS) - pad;
    let ix = i32(p % W) + i32(r % KS) - pad;
    if (iy < 0 || iy >= i32(H) || ix < 0 || ix >= i32(W)) {
        return f16(0.0);
    }
    return f16(input[((n * C_IN + ci) * H + u32(iy)) * W + u32(ix)]);
}

// Stages step k0's weights and input into buffer `buf`, all lanes together.
fn stage(buf: u32, k0: u32, m0: u32, q0: u32, lid: u32) {
    for (var i = lid; i < BM * BK; i += WG) {
        sa[buf * TILE + i] = weight[(m0 + i / BK) * K_PAD + k0 + i % BK];
    }
    for (var i = lid; i < BK * BN; i += WG) {
        sb[buf * TILE + i] = gather(k0 + i / BN, q0 + i % BN);
    }
}

// ReLU that keeps NaN (as the other variants do: an overflow must reach the logits).
fn relu(v: f32) -> f32 {
    return select(0.0, v, !(v <= 0.0));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_id) sg: u32,
        @builtin(subgroup_invocation_id) sid: u32,
        @builtin(subgroup_size) sg_size: u32) {
    mma_lane(sid, sg_size);
    let total = N * H * W;
    // Pixel blocks are folded over dispatch x and z so no dimension passes 65535; the
    // test is uniform over the workgroup, so every barrier below is reached by all.
    let linear = wid.x + wid.z * nwg.x;
    if (linear * BN >= total) {
        return;
    }
    let q0 = linear * BN;
    let m0 = wid.y * BM;
    // This subgroup's 32x32 quarter of the block.
    let rm = (sg / 2u) * 32u;
    let rn = (sg % 2u) * 32u;
    var c00 = mma_zero();
    var c01 = mma_zero();
    var c10 = mma_zero();
    var c11 = mma_zero();
    stage(0u, 0u, m0, q0, lid);
    workgroupBarrier();
    let steps = K_PAD / BK;
    for (var s = 0u; s < steps; s++) {
        // The next step goes into the other buffer, last read before the previous barrier.
        if (s + 1u < steps) {
            stage(1u - s % 2u, (s + 1u) * BK, m0, q0, lid);
        }
        let cur = (s % 2u) * TILE;
        let a0 = mma_load_a(cur + rm * BK);
        let a1 = mma_load_a(cur + (rm + 16u) * BK);
        let b0 = mma_load_b(cur + rn);
        let b1 = mma_load_b(cur + rn + 16u);
        c00 = mma(a0, b0, c00);
        c01 = mma(a0, b1, c01);
        c10 = mma(a1, b0, c10);
        c11 = mma(a1, b1, c11);
        // This step's buffer is overwritten in the step after next; the next one's is
        // complete.
        workgroupBarrier();
    }
    mma_store(c00, rm * BN + rn);
    mma_store(c01, rm * BN + rn + 16u);
    mma_store(c10, (rm + 16u) * BN + rn);
    mma_store(c11, (rm + 16u) * BN + rn + 16u);
    workgroupBarrier();
    let hw = H * W;
    for (var i = lid; i < BM * BN; i += WG) {
        let co = m0 + i / BN;
        let q = q0 + i % BN;
        if (co < C_OUT && q < total) {
            var v = sc[i] + f32(bias[co]);
            if (RELU) {
                v = relu(v);
            }
            output[((q / hw) * C_OUT + co) * hw + q % hw] = S(v);
        }
    }
}
