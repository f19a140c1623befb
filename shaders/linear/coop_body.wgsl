// Fully connected layer on 16x16x16 matrix tiles, for batches of 16 and more: for one row
// chunk of the weight, out^T[r][m] = sum_k W[r][k] * x[m][k], the weight's rows as the
// GEMM's rows and the batch as its columns. The matrix operations come from the file
// included before this one (mma/coop on tensor cores, mma/emulated lane by
// lane on CI's CPU drivers), which work on the tiles this file stages: sa (weights), sb
// (x transposed) and sc (the sums), as conv/coop_body does.
//
// A workgroup computes 64 weight rows x 64 batch rows (mma/tiles); per step of 16
// along k the lanes stage the weight block (64x16) and x's block (16x64), converted to
// f16, in workgroup memory. The output goes through workgroup memory for bias and ReLU.

#include "linear/header"
#include "mma/tiles"

// 4 subgroups: the host sets 4 x the adapter's (fixed) subgroup size.
override WG: u32 = 128u;

// Stages step k0's weight rows and x columns into buffer `buf`, all lanes together.
fn stage(buf: u32, k0: u32, r0: u32, m0: u32, lid: u32) {
    for (var i = lid; i < BM * BK; i += WG) {
        let r = r0 + i / BK;
        let k = k0 + i % BK;
        var v = f16(0.0);
        if (r < ROWS && k < K) {
            v = f16(weight[r * K + k]);
        }
        sa[buf * TILE + i] = v;
    }
    for (var i = lid; i < BK * BN; i += WG) {
        let k = k0 + i / BN;
        let m = m0 + i % BN;
        var v = f16(0.0);
        if (m < M && k < K) {
            v = f16(x[m * K + k]);
        }
        sb[buf * TILE + i] = v;
    }
}

// The workgroup's blocks: `tile` its id folded over dispatch x and z, `y` its dispatch y.
fn block(tile: u32, y: u32, lid: u32, sg: u32) {
    let rblocks = (ROWS + BM - 1u) / BM;
    let mblocks = (M + BN - 1u) / BN;
    // Uniform per workgroup: the whole workgroup leaves, so the barriers below stay uniform.
    if (tile >= rblocks * mblocks) {
        return;
    }
    let m0 = (tile % mblocks) * BN;
    let r0 = (tile / mblocks) * BM;
    multiply_block(r0, m0, (K + BK - 1u) / BK, lid, sg);
    for (var i = lid; i < BM * BN; i += WG) {
        let r = r0 + i / BN;
        let m = m0 + i % BN;
        if (r < ROWS && m < M) {
            var v = sc[i] + f32(bias[ROW0 + r]);
            if (RELU) {
                v = relu(v);
            }
            output[m * N_OUT + ROW0 + r] = S(v);
        }
    }
}
