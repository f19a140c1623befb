// The 64x64 block product that the cooperative-matrix kernels share (conv/forward/coop_body, the
// forward; conv/backward_weight/coop_body, the weight gradient; linear/coop_body, FC): C[m][n] =
// sum over r of A[m][r] * B[r][n] for one block of BM rows and BN columns, in f32 from f16
// operands. The including file stages the operands: its `stage(buf, r0, m0, n0, lid)`
// writes A's BM x BK block at (m0, r0) into sa and B's BK x BN block at (r0, n0) into sb,
// in buffer `buf`, all lanes together. The entry point is here: it sets up the lane's
// matrix operations and calls the including file's `block(tile, y, lid, sg)`, which picks
// its blocks and writes them out. The matrix operations come from the file included
// before (mma/coop, or mma/emulated lane by lane).
//
// Four subgroups each hold a 32x32 quarter as 2x2 accumulator tiles. The staging is
// double-buffered: step s + 1 is written while step s's tiles multiply, so a step takes one
// barrier.

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

// Two buffers of each staged tile (TILE elements apart).
const TILE: u32 = 1024u;
var<workgroup> sa: array<f16, 2048>; // 2 x BM x BK, row-major
var<workgroup> sb: array<f16, 2048>; // 2 x BK x BN, row-major
var<workgroup> sc: array<f32, 4096>; // BM x BN, row-major

// The block at rows m0, columns n0, over `steps` steps of BK along r, left row-major in sc
// (after a barrier: every lane may read any element). Called from uniform control flow.
fn multiply_block(m0: u32, n0: u32, steps: u32, lid: u32, sg: u32) {
    // This subgroup's 32x32 quarter of the block.
    let rm = (sg / 2u) * 32u;
    let rn = (sg % 2u) * 32u;
    var c00 = mma_zero();
    var c01 = mma_zero();
    var c10 = mma_zero();
    var c11 = mma_zero();
    stage(0u, 0u, m0, n0, lid);
    workgroupBarrier();
    for (var s = 0u; s < steps; s++) {
        // The next step goes into the other buffer, last read before the previous barrier.
        if (s + 1u < steps) {
            stage(1u - s % 2u, (s + 1u) * BK, m0, n0, lid);
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
}

// Every argument of `block` is uniform over the workgroup but `lid` (`tile` folds dispatch x
// and z), so a `block` that returns early on `tile` leaves with the whole workgroup and its
// barriers stay in uniform control flow.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_id) sg: u32,
        @builtin(subgroup_invocation_id) sid: u32,
        @builtin(subgroup_size) sg_size: u32) {
    mma_lane(sid, sg_size);
    block(wid.x + wid.z * nwg.x, wid.y, lid, sg);
}
