// What the Winograd kernels (winograd.wgsl, winograd2.wgsl) share: the edge bookkeeping of
// a tile's input patch, in the `rok`, `cok`, `roff` and `coff` arrays each declares at its
// patch's size, which halo columns a lane loads itself, and the output's ReLU.

// Whether this lane loads its patch's left or right halo column itself, rather than taking
// it from the lane of the tile beside it by shuffle.
var<private> need_left: bool;
var<private> need_right: bool;

// Sets need_left and need_right for tile t of an image of `per_image` tiles, `tx` to a
// row. A neighbouring lane serves only if it holds the adjacent tile of the same row: the
// subgroup's ends (`lane` 0 and 7 of each group of 8) and the rows' ends load, and the
// neighbours' tile indices are shuffled, so no mapping of invocations to lanes is assumed.
fn neighbours(t: u32, tx: u32, per_image: u32, lane: u32) {
    let left_t = subgroupShuffleUp(t, 1u);
    let right_t = subgroupShuffleDown(t, 1u);
    need_left = lane == 0u || t % tx == 0u || left_t + 1u != t;
    need_right = lane == 7u || t % tx == tx - 1u || t + 1u >= per_image || right_t != t + 1u;
}

// Row and column i of the patch whose top-left input pixel is (y0, x0): whether it lies in
// the image, and its clamped offset, so loads stay in bounds and the padding reads as 0
// through a select.
fn edge(i: u32, y0: i32, x0: i32) {
    let iy = y0 + i32(i);
    let ix = x0 + i32(i);
    rok[i] = iy >= 0 && iy < i32(H);
    cok[i] = ix >= 0 && ix < i32(W);
    roff[i] = u32(clamp(iy, 0, i32(H) - 1)) * W;
    coff[i] = u32(clamp(ix, 0, i32(W) - 1));
}

// ReLU that keeps NaN. Where f32 overflows, the transform's sums of +inf and -inf give NaN
// (direct summation gives inf), and max(NaN, 0) may return 0 on some drivers: the
// overflow would then vanish into a finite result instead of reaching the check on the
// logits.
fn relu(v: vec4<f32>) -> vec4<f32> {
    return select(vec4<f32>(0.0), v, !(v <= vec4<f32>(0.0)));
}
