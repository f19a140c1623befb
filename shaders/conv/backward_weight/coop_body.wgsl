// A convolution's weight gradient on 16x16x16 matrix tiles (f16 training):
// dw[co][k] = sum over q of dy[co][q] * X[k][q], k = (ci, ky, kx), q = (n, y, x) over
// the batch's pixels, X the gathered input of the forward (conv/gather). The matrix
// operations come from the file included before this one (mma/coop on tensor cores,
// mma/emulated lane by lane on CI's CPU drivers).
//
// A workgroup computes a 64 (output channels) x 64 (k) block of dw (mma/tiles) over
// one chunk of QC pixels: the reduction is split in CHUNKS chunks (split-K) so that early
// layers, a few blocks of channels over millions of pixels, still fill the GPU. Per step
// of 16 pixels the lanes stage dy (64 channels x 16 pixels) and the gathered input (16
// pixels x 64 k), both converted to f16 (dy carries the loss scale, which keeps it in f16's
// range), consecutive lanes on consecutive pixels. Each chunk's block goes to its slice of
// out ([CHUNKS][C_OUT][C_IN * KS * KS], added in chunk order by
// conv/backward_weight/reduce), or with one chunk straight to dw (ACCUMULATE adds to
// it). The sums run in a fixed order: the result is the same bits run to run.

#include "conv/backward_weight/header"

override CHUNKS: u32;
// Pixels per chunk, a multiple of BK: a step never straddles two chunks.
override QC: u32;
// 4 subgroups: the host sets 4 x the adapter's (fixed) subgroup size.
override WG: u32 = 128u;

#include "mma/tiles"
#include "conv/gather"

// The first pixel of this workgroup's chunk.
var<private> q_first: u32;

// Stages the chunk's pixels r0 .. r0 + 16: dy rows m0.. into sa, input columns n0.. into
// sb, in buffer `buf`, all lanes together.
fn stage(buf: u32, r0: u32, m0: u32, n0: u32, lid: u32) {
    let total = N * H * W;
    let hw = H * W;
    for (var i = lid; i < BM * BK; i += WG) {
        let co = m0 + i / BK;
        let q = q_first + r0 + i % BK;
        var v = f16(0.0);
        if (co < C_OUT && q < total) {
            v = f16(dy[((q / hw) * C_OUT + co) * hw + q % hw]);
        }
        sa[buf * TILE + i] = v;
    }
    for (var i = lid; i < BK * BN; i += WG) {
        let r = i % BK;
        let c = i / BK;
        sb[buf * TILE + r * BN + c] = gather(n0 + c, q_first + r0 + r);
    }
}

// The workgroup's blocks: `tile` its id folded over dispatch x and z, `y` its dispatch y.
fn block(tile: u32, y: u32, lid: u32, sg: u32) {
    let row = C_IN * KS * KS;
    let mblocks = (C_OUT + BM - 1u) / BM;
    let nblocks = (row + BN - 1u) / BN;
    let blocks = mblocks * nblocks;
    if (tile >= blocks * CHUNKS) {
        return;
    }
    let chunk = tile / blocks;
    let m0 = ((tile % blocks) / nblocks) * BM;
    let n0 = (tile % nblocks) * BN;
    q_first = chunk * QC;
    let total = N * H * W;
    let steps = (min(QC, total - q_first) + BK - 1u) / BK;
    multiply_block(m0, n0, steps, lid, sg);
    for (var i = lid; i < BM * BN; i += WG) {
        let co = m0 + i / BN;
        let k = n0 + i % BN;
        if (co < C_OUT && k < row) {
            let at = co * row + k;
            if (CHUNKS > 1u) {
                out[chunk * C_OUT * row + at] = sc[i];
            } else if (ACCUMULATE) {
                out[at] += sc[i];
            } else {
                out[at] = sc[i];
            }
        }
    }
}
