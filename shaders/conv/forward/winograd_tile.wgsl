// What the Winograd kernels (winograd.wgsl, winograd2.wgsl) share: where a lane's tile
// lies (for tiles of OUT x OUT output pixels, the including kernel's constant), the edge
// bookkeeping of its input patch, in the `rok`, `cok`, `roff` and `coff` arrays each
// declares at its patch's size, which halo columns a lane loads itself, and the end of the
// kernel (its `finish` per group of 4 output channels).

// A lane's tile: tile t of image n (tx tiles to a row, per_image in all), its patch's
// top-left input pixel (y0, x0), one row and column of padding above and left of the
// tile's output.
struct Tile {
    n: u32,
    t: u32,
    tx: u32,
    per_image: u32,
    y0: i32,
    x0: i32,
}

// Workgroups per image: WG consecutive tiles of one image each.
fn tile_groups() -> u32 {
    let per_image = ((W + OUT - 1u) / OUT) * ((H + OUT - 1u) / OUT);
    return (per_image + WG - 1u) / WG;
}

// The tile of lane `lid` of workgroup `linear` (images x tile groups are folded over
// dispatch x and z so no dimension passes 65535; the caller has left if linear is past
// them).
fn tile_at(linear: u32, lid: u32) -> Tile {
    let tx = (W + OUT - 1u) / OUT;
    let per_image = tx * ((H + OUT - 1u) / OUT);
    let groups = tile_groups();
    let t = (linear % groups) * WG + lid;
    return Tile(linear / groups, t, tx, per_image, i32((t / tx) * OUT) - 1,
                i32((t % tx) * OUT) - 1);
}

// Whether this lane loads its patch's left or right halo column itself, rather than taking
// it from the lane of the tile beside it by shuffle.
var<private> need_left: bool;
var<private> need_right: bool;

// Sets need_left and need_right for the lane's tile. A neighbouring lane serves only if it
// holds the adjacent tile of the same row: the subgroup's ends (`lane` 0 and 7 of each
// group of 8) and the rows' ends load, and the neighbours' tile indices are shuffled, so
// no mapping of invocations to lanes is assumed.
fn neighbours(tile: Tile, lane: u32) {
    let t = tile.t;
    let tx = tile.tx;
    let left_t = subgroupShuffleUp(t, 1u);
    let right_t = subgroupShuffleDown(t, 1u);
    need_left = lane == 0u || t % tx == 0u || left_t + 1u != t;
    need_right = lane == 7u || t % tx == tx - 1u || t + 1u >= tile.per_image
        || right_t != t + 1u;
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

// The kernel's end for a lane: its tile's sums through the output transform (`finish`,
// which the including kernel defines) for output channels co0 .. co0 + 8, if the tile is
// in the image.
fn finish_tile(tile: Tile, co0: u32) {
    if (tile.t >= tile.per_image) { return; }
    let oy = u32(tile.y0 + 1);
    let ox = u32(tile.x0 + 1);
    finish(0u, tile.n, co0, oy, ox);
    finish(1u, tile.n, co0 + 4u, oy, ox);
}
