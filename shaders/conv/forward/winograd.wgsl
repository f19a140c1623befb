// Winograd convolution F(4x4, 3x3) (kernel 3, stride 1, padding 1): each 4x4 block of
// output pixels of a channel is A^T [sum_ci U[co, ci] (.) V[ci]] A, where V = B^T d B is the
// 6x6 input patch d transformed and U = G g G^T the 3x3 weight g transformed (once, at
// upload, or by layout/winograd.wgsl after each SGD step). 36 multiplies per 16 outputs and
// input channel, where the direct kernels need 144.
//
// Each invocation computes one 4x4 tile for TM = 8 output channels, accumulating the 36
// transform-domain products of each group of 4 channels in 36 vec4 registers over all
// input channels; the output transform, bias and ReLU run once at the end, on 4 channels
// at once. The channel block comes from the workgroup id, and an input channel's 288
// transformed weights (72 vec4) are loaded 9 per lane and shared across the subgroup by
// broadcast, as in subgroup.wgsl: on SIMD-on-CPU drivers (lavapipe) every storage load,
// uniform or not, is a per-lane scalar loop, and loading each weight in every lane ran
// 9x slower than this (137 against 14.6 ms for 128 -> 128 channels at 56x56). The only
// other per-lane loads are the input patch's, each value feeding 8 multiplies after the
// transform: a lane loads its tile's own 4 columns of the 6x6 patch (24 values) and takes
// the 2 halo columns from the lanes of the tiles beside it by shuffle, loading them itself
// only where that lane holds no neighbouring tile (the subgroup's ends, the ends of a tile
// row). Measured on lavapipe in three alternated runs at VGG16's 5 shapes: 8-11% faster
// than loading all 36 (e.g. 56.3 against 63.3 ms at 256 -> 256 channels, 56x56). Needs
// subgroups of at least 8 lanes. Measured and dropped on lavapipe: loading
// the patch as vec4 rows (12 elements for 6: a vec4 load costs four) was 17.0 against 14.6
// ms; two adjacent tiles per invocation (60 loads for 72, each broadcast weight used
// twice) 25.3 ms, its 144 accumulators spilling.
//
// Every array here is indexed by constants only (the helpers are inlined): an index
// computed at run time moves an array from registers to memory.
//
// Interpolation points 0, 1, -1, 2, -2 (Lavin and Gray's matrices); the README gives the
// measured error against the f64 reference.
//
// Weights are packed as [C_OUT / 8][C_IN][36][8], zero padded; bias padded to 8.

// No `enable subgroups;`: naga 30 rejects the directive and takes the builtins without it.

#include "conv/forward/header"
#include "conv/forward/winograd_tile"

override WG: u32 = 64u;
const TM: u32 = 8u;
// Output pixels per tile side (winograd_tile).
const OUT: u32 = 4u;

// f32 whatever S is (ConvTune::weight_precision says why).
@group(0) @binding(1) var<storage, read> weight: array<vec4<f32>>;
var<private> wv: array<vec4<f32>, 9>;

// One row of six values of the patch or of the transform domain.
struct Row {
    a: vec4<f32>,
    b: vec2<f32>,
}

var<private> acc0: array<vec4<f32>, 36>;
var<private> acc1: array<vec4<f32>, 36>;
var<private> roff: array<u32, 6>;
var<private> coff: array<u32, 6>;
var<private> rok: array<bool, 6>;
var<private> cok: array<bool, 6>;

fn ld(i: u32) -> f32 {
    return f32(input[i]);
}

// Row r of the patch at `plane`: this lane loads the tile's own 4 columns; the two halo
// columns come from the neighbouring lanes' tiles by shuffle, loaded only where the
// neighbour is not the tile beside this one.
fn patch_row(plane: u32, r: u32) -> Row {
    let base = plane + roff[r];
    let ok = rok[r];
    let own = select(vec4<f32>(0.0),
        vec4<f32>(ld(base + coff[1]), ld(base + coff[2]), ld(base + coff[3]), ld(base + coff[4])),
        vec4<bool>(ok && cok[1], ok && cok[2], ok && cok[3], ok && cok[4]));
    var left = subgroupShuffleUp(own.w, 1u);
    var right = subgroupShuffleDown(own.x, 1u);
    if (need_left) {
        left = select(0.0, ld(base + coff[0]), ok && cok[0]);
    }
    if (need_right) {
        right = select(0.0, ld(base + coff[5]), ok && cok[5]);
    }
    return Row(vec4<f32>(left, own.x, own.y, own.z), vec2<f32>(own.w, right));
}

// B^T applied across six rows, elementwise along them.
fn bt_rows(d0: Row, d1: Row, d2: Row, d3: Row, d4: Row, d5: Row) -> array<Row, 6> {
    return array<Row, 6>(
        Row(4.0 * d0.a - 5.0 * d2.a + d4.a, 4.0 * d0.b - 5.0 * d2.b + d4.b),
        Row(-4.0 * (d1.a + d2.a) + d3.a + d4.a, -4.0 * (d1.b + d2.b) + d3.b + d4.b),
        Row(4.0 * (d1.a - d2.a) - d3.a + d4.a, 4.0 * (d1.b - d2.b) - d3.b + d4.b),
        Row(2.0 * (d3.a - d1.a) - d2.a + d4.a, 2.0 * (d3.b - d1.b) - d2.b + d4.b),
        Row(2.0 * (d1.a - d3.a) - d2.a + d4.a, 2.0 * (d1.b - d3.b) - d2.b + d4.b),
        Row(4.0 * d1.a - 5.0 * d3.a + d5.a, 4.0 * d1.b - 5.0 * d3.b + d5.b),
    );
}

// B^T applied along one row.
fn bt_row(r: Row) -> Row {
    let v = r.a;
    return Row(
        vec4<f32>(4.0 * v.x - 5.0 * v.z + r.b.x, -4.0 * (v.y + v.z) + v.w + r.b.x,
                  4.0 * (v.y - v.z) - v.w + r.b.x, 2.0 * (v.w - v.y) - v.z + r.b.x),
        vec2<f32>(2.0 * (v.y - v.w) - v.z + r.b.x, 4.0 * v.y - 5.0 * v.w + r.b.y),
    );
}

// The weights of position j, channel group g: the vec4 at 2j + g of this input channel's
// 72, held by lane (2j + g) % 8 in slot (2j + g) / 8.
fn wt(j: u32, g: u32) -> vec4<f32> {
    let q = 2u * j + g;
    return subgroupShuffle(wv[q / 8u], q % 8u);
}

// acc[6r + c] += U[6r + c] * V[r][c] for one transformed row, both channel groups. Written
// out group by group: interleaving the groups per position through a helper gave the same
// bits but ran 16.4 against 14.6-15.1 ms on lavapipe (128 -> 128 channels at 56x56).
fn mac_row(r: u32, v: Row) {
    let j = r * 6u;
    let x = array<f32, 6>(v.a.x, v.a.y, v.a.z, v.a.w, v.b.x, v.b.y);
    acc0[j] = fma(wt(j, 0u), vec4<f32>(x[0]), acc0[j]);
    acc0[j + 1u] = fma(wt(j + 1u, 0u), vec4<f32>(x[1]), acc0[j + 1u]);
    acc0[j + 2u] = fma(wt(j + 2u, 0u), vec4<f32>(x[2]), acc0[j + 2u]);
    acc0[j + 3u] = fma(wt(j + 3u, 0u), vec4<f32>(x[3]), acc0[j + 3u]);
    acc0[j + 4u] = fma(wt(j + 4u, 0u), vec4<f32>(x[4]), acc0[j + 4u]);
    acc0[j + 5u] = fma(wt(j + 5u, 0u), vec4<f32>(x[5]), acc0[j + 5u]);
    acc1[j] = fma(wt(j, 1u), vec4<f32>(x[0]), acc1[j]);
    acc1[j + 1u] = fma(wt(j + 1u, 1u), vec4<f32>(x[1]), acc1[j + 1u]);
    acc1[j + 2u] = fma(wt(j + 2u, 1u), vec4<f32>(x[2]), acc1[j + 2u]);
    acc1[j + 3u] = fma(wt(j + 3u, 1u), vec4<f32>(x[3]), acc1[j + 3u]);
    acc1[j + 4u] = fma(wt(j + 4u, 1u), vec4<f32>(x[4]), acc1[j + 4u]);
    acc1[j + 5u] = fma(wt(j + 5u, 1u), vec4<f32>(x[5]), acc1[j + 5u]);
}

// A^T over six vec4s (4 channels each): four outputs.
fn at4(v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>, v4: vec4<f32>,
       v5: vec4<f32>) -> array<vec4<f32>, 4> {
    let s = v1 + v2;
    let d = v1 - v2;
    let s2 = v3 + v4;
    let d2 = v3 - v4;
    return array<vec4<f32>, 4>(v0 + s + s2, d + 2.0 * d2, s + 4.0 * s2, d + 8.0 * d2 + v5);
}

// Column c of A^T M, from the accumulators of group `g`.
fn out_col(g: u32, c: u32) -> array<vec4<f32>, 4> {
    if (g == 0u) {
        return at4(acc0[c], acc0[6u + c], acc0[12u + c], acc0[18u + c], acc0[24u + c],
                   acc0[30u + c]);
    }
    return at4(acc1[c], acc1[6u + c], acc1[12u + c], acc1[18u + c], acc1[24u + c],
               acc1[30u + c]);
}


// One output row of 4 pixels for 4 channels (out[j][k]: pixel j, channel co + k).
fn put_row(n: u32, co: u32, y: u32, x: u32, out: array<vec4<f32>, 4>, bias4: vec4<f32>) {
    if (y >= H) { return; }
    var o0 = out[0] + bias4;
    var o1 = out[1] + bias4;
    var o2 = out[2] + bias4;
    var o3 = out[3] + bias4;
    if (RELU) {
        o0 = relu4(o0);
        o1 = relu4(o1);
        o2 = relu4(o2);
        o3 = relu4(o3);
    }
    put_px(n, co, y, x, vec4<f32>(o0.x, o1.x, o2.x, o3.x));
    put_px(n, co + 1u, y, x, vec4<f32>(o0.y, o1.y, o2.y, o3.y));
    put_px(n, co + 2u, y, x, vec4<f32>(o0.z, o1.z, o2.z, o3.z));
    put_px(n, co + 3u, y, x, vec4<f32>(o0.w, o1.w, o2.w, o3.w));
}

// Four pixels of one channel, those inside the image.
fn put_px(n: u32, co: u32, y: u32, x: u32, v: vec4<f32>) {
    if (co >= C_OUT) { return; }
    let o = ((n * C_OUT + co) * H + y) * W + x;
    output[o] = S(v.x);
    if (x + 1u < W) { output[o + 1u] = S(v.y); }
    if (x + 2u < W) { output[o + 2u] = S(v.z); }
    if (x + 3u < W) { output[o + 3u] = S(v.w); }
}

// The output transform of group `g` (channels co .. co + 3) of the tile at (y, x).
fn finish(g: u32, n: u32, co: u32, y: u32, x: u32) {
    let c0 = out_col(g, 0u);
    let c1 = out_col(g, 1u);
    let c2 = out_col(g, 2u);
    let c3 = out_col(g, 3u);
    let c4 = out_col(g, 4u);
    let c5 = out_col(g, 5u);
    let b = vec4<f32>(f32(bias[co]), f32(bias[co + 1u]), f32(bias[co + 2u]),
                      f32(bias[co + 3u]));
    put_row(n, co, y, x, at4(c0[0], c1[0], c2[0], c3[0], c4[0], c5[0]), b);
    put_row(n, co, y + 1u, x, at4(c0[1], c1[1], c2[1], c3[1], c4[1], c5[1]), b);
    put_row(n, co, y + 2u, x, at4(c0[2], c1[2], c2[2], c3[2], c4[2], c5[2]), b);
    put_row(n, co, y + 3u, x, at4(c0[3], c1[3], c2[3], c3[3], c4[3], c5[3]), b);
}


@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sid: u32) {
    // Images x tile groups are folded over dispatch x and z so no dimension passes 65535.
    let linear = wid.x + wid.z * nwg.x;
    if (linear >= N * tile_groups()) { return; }
    let tile = tile_at(linear, lid);
    edge(0u, tile.y0, tile.x0);
    edge(1u, tile.y0, tile.x0);
    edge(2u, tile.y0, tile.x0);
    edge(3u, tile.y0, tile.x0);
    edge(4u, tile.y0, tile.x0);
    edge(5u, tile.y0, tile.x0);

    let wblock = wid.y * C_IN * 72u;
    let lane = sid % 8u;
    neighbours(tile, lane);
    for (var ci = 0u; ci < C_IN; ci++) {
        let plane = (tile.n * C_IN + ci) * H * W;
        let e = bt_rows(patch_row(plane, 0u), patch_row(plane, 1u), patch_row(plane, 2u),
                        patch_row(plane, 3u), patch_row(plane, 4u), patch_row(plane, 5u));
        let wb = wblock + ci * 72u + lane;
        wv = array<vec4<f32>, 9>(weight[wb], weight[wb + 8u], weight[wb + 16u],
            weight[wb + 24u], weight[wb + 32u], weight[wb + 40u], weight[wb + 48u],
            weight[wb + 56u], weight[wb + 64u]);
        mac_row(0u, bt_row(e[0]));
        mac_row(1u, bt_row(e[1]));
        mac_row(2u, bt_row(e[2]));
        mac_row(3u, bt_row(e[3]));
        mac_row(4u, bt_row(e[4]));
        mac_row(5u, bt_row(e[5]));
    }

    finish_tile(tile, wid.y * TM);
}
