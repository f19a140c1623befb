// Convolution as an implicit GEMM on 16x16x16 matrix tiles: out[co][q] = sum_k
// W[co][k] * X[k][q] over k = (ci, ky, kx) and q = (n, y, x), the whole batch's pixels.
// The matrix operations come from the file included before this one: cooperative
// matrices (tensor cores, mma/coop) or the same operations done lane by lane
// (mma/emulated, which CI runs on CPU drivers to test this file's tiling).
//
// A workgroup computes a 64 (channels) x 64 (pixels) block (mma/tiles). Per step of
// 16 along k, the lanes stage the block's weights (64x16, f16) and the gathered input
// (16x64: im2col with the padding as zeros, converted to f16) in workgroup memory, which
// the tiles load from. The output goes through workgroup memory too: cooperative matrices
// have no per-element access, so bias, ReLU and the scatter to NCHW run there, one element
// per lane at a time.
//
// Weights are packed [M_PAD][K_PAD] (row co, column k = (ci * KS + ky) * KS + kx), f16,
// zero padded to whole blocks of 64 rows and 16 columns.

#include "conv/forward/header"
#include "mma/tiles"
#include "conv/gather"

// 4 subgroups: the host sets 4 x the adapter's (fixed) subgroup size.
override WG: u32 = 128u;
override K_PAD: u32;

@group(0) @binding(1) var<storage, read> weight: array<f16>;

// Stages step k0's weights and input into buffer `buf`, all lanes together.
fn stage(buf: u32, k0: u32, m0: u32, q0: u32, lid: u32) {
    for (var i = lid; i < BM * BK; i += WG) {
        sa[buf * TILE + i] = weight[(m0 + i / BK) * K_PAD + k0 + i % BK];
    }
    for (var i = lid; i < BK * BN; i += WG) {
        sb[buf * TILE + i] = gather(k0 + i / BN, q0 + i % BN);
    }
}

// The workgroup's blocks: `tile` its id folded over dispatch x and z, `y` its dispatch y.
fn block(tile: u32, y: u32, lid: u32, sg: u32) {
    let total = N * H * W;
    // Pixel blocks over the tiles, output-channel blocks over y.
    if (tile * BN >= total) {
        return;
    }
    let q0 = tile * BN;
    let m0 = y * BM;
    multiply_block(m0, q0, K_PAD / BK, lid, sg);
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
