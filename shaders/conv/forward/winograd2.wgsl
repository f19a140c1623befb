// Winograd convolution F(2x2, 3x3) (kernel 3, stride 1, padding 1): each 2x2 block of
// output pixels of a channel is A^T [sum_ci U[co, ci] (.) V[ci]] A, with V = B^T d B the
// 4x4 input patch transformed and U = G g G^T the weight transformed (once, at upload, or
// by layout/winograd.wgsl after each SGD step). 16 multiplies per 4 outputs and input
// channel, where the direct kernels need 36 and F(4x4, 3x3) (winograd.wgsl) 9.
//
// The same layout as winograd.wgsl, a quarter of the tile: each invocation computes one
// 2x2 tile for TM = 8 output channels in 32 vec4 accumulators (F(4x4)'s 72 spill on
// SIMD-on-CPU drivers), and the transformed weights of an input channel (32 vec4) are
// loaded 4 per lane and shared across the subgroup by broadcast. Each lane loads its
// tile's own 2 patch columns and takes the halo columns from its neighbours by shuffle, as
// winograd.wgsl does (7-20% faster than loading all 16 in two alternated runs on
// lavapipe). Per output it loads more than F(4x4) does, but a layer has 4x as many tiles: the variant for small feature maps,
// where F(4x4) leaves most of a workgroup's lanes without a tile. Its transform's
// coefficients are 0, 1 and 1/2, so it is about as accurate as the direct kernels.
//
// Every array here is indexed by constants only (the helpers are inlined): an index
// computed at run time moves an array from registers to memory.
//
// Weights are packed as [C_OUT / 8][C_IN][16][8], zero padded; bias padded to 8.

// No `enable subgroups;`: naga 30 rejects the directive and takes the builtins without it.

#include "conv/forward/header"
#include "conv/forward/winograd_tile"

override WG: u32 = 64u;
const TM: u32 = 8u;
// Output pixels per tile side (winograd_tile).
const OUT: u32 = 2u;

// f32 whatever S is (as winograd.wgsl's).
@group(0) @binding(1) var<storage, read> weight: array<vec4<f32>>;
var<private> wv: array<vec4<f32>, 4>;

var<private> acc0: array<vec4<f32>, 16>;
var<private> acc1: array<vec4<f32>, 16>;
var<private> roff: array<u32, 4>;
var<private> coff: array<u32, 4>;
var<private> rok: array<bool, 4>;
var<private> cok: array<bool, 4>;

fn ld(i: u32) -> f32 {
    return f32(input[i]);
}

// Row r of the 4x4 patch at `plane`: the tile's own 2 columns loaded, the halo columns
// taken from the neighbouring tiles' lanes by shuffle where they hold them, as
// winograd.wgsl does; the padding reads as 0 through a select.
fn patch_row(plane: u32, r: u32) -> vec4<f32> {
    let base = plane + roff[r];
    let ok = rok[r];
    let own = select(vec2<f32>(0.0), vec2<f32>(ld(base + coff[1]), ld(base + coff[2])),
                     vec2<bool>(ok && cok[1], ok && cok[2]));
    var left = subgroupShuffleUp(own.y, 1u);
    var right = subgroupShuffleDown(own.x, 1u);
    if (need_left) {
        left = select(0.0, ld(base + coff[0]), ok && cok[0]);
    }
    if (need_right) {
        right = select(0.0, ld(base + coff[3]), ok && cok[3]);
    }
    return vec4<f32>(left, own.x, own.y, right);
}

// B^T across four rows (each a vec4 of the patch's columns).
fn bt_rows(d0: vec4<f32>, d1: vec4<f32>, d2: vec4<f32>, d3: vec4<f32>) -> array<vec4<f32>, 4> {
    return array<vec4<f32>, 4>(d0 - d2, d1 + d2, d2 - d1, d1 - d3);
}

// B^T along one row.
fn bt_row(v: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(v.x - v.z, v.y + v.z, v.z - v.y, v.y - v.w);
}

// The weights of position j, channel group g: the vec4 at 2j + g of this input channel's
// 32, held by lane (2j + g) % 8 in slot (2j + g) / 8.
fn wt(j: u32, g: u32) -> vec4<f32> {
    let q = 2u * j + g;
    return subgroupShuffle(wv[q / 8u], q % 8u);
}

// acc[4r + c] += U[4r + c] * V[r][c] for one transformed row, both channel groups.
fn mac_row(r: u32, v: vec4<f32>) {
    let j = r * 4u;
    acc0[j] = fma(wt(j, 0u), vec4<f32>(v.x), acc0[j]);
    acc0[j + 1u] = fma(wt(j + 1u, 0u), vec4<f32>(v.y), acc0[j + 1u]);
    acc0[j + 2u] = fma(wt(j + 2u, 0u), vec4<f32>(v.z), acc0[j + 2u]);
    acc0[j + 3u] = fma(wt(j + 3u, 0u), vec4<f32>(v.w), acc0[j + 3u]);
    acc1[j] = fma(wt(j, 1u), vec4<f32>(v.x), acc1[j]);
    acc1[j + 1u] = fma(wt(j + 1u, 1u), vec4<f32>(v.y), acc1[j + 1u]);
    acc1[j + 2u] = fma(wt(j + 2u, 1u), vec4<f32>(v.z), acc1[j + 2u]);
    acc1[j + 3u] = fma(wt(j + 3u, 1u), vec4<f32>(v.w), acc1[j + 3u]);
}

// A^T over four vec4s (4 channels each): two outputs.
fn at2(v0: vec4<f32>, v1: vec4<f32>, v2: vec4<f32>, v3: vec4<f32>) -> array<vec4<f32>, 2> {
    return array<vec4<f32>, 2>(v0 + v1 + v2, v1 - v2 - v3);
}

// Column c of A^T M, from the accumulators of group `g`.
fn out_col(g: u32, c: u32) -> array<vec4<f32>, 2> {
    if (g == 0u) {
        return at2(acc0[c], acc0[4u + c], acc0[8u + c], acc0[12u + c]);
    }
    return at2(acc1[c], acc1[4u + c], acc1[8u + c], acc1[12u + c]);
}


// One output row of 2 pixels for 4 channels (out[j][k]: pixel j, channel co + k).
fn put_row(n: u32, co: u32, y: u32, x: u32, out: array<vec4<f32>, 2>, bias4: vec4<f32>) {
    if (y >= H) { return; }
    var o0 = out[0] + bias4;
    var o1 = out[1] + bias4;
    if (RELU) {
        o0 = relu4(o0);
        o1 = relu4(o1);
    }
    put_px(n, co, y, x, vec2<f32>(o0.x, o1.x));
    put_px(n, co + 1u, y, x, vec2<f32>(o0.y, o1.y));
    put_px(n, co + 2u, y, x, vec2<f32>(o0.z, o1.z));
    put_px(n, co + 3u, y, x, vec2<f32>(o0.w, o1.w));
}

// Two pixels of one channel, those inside the image.
fn put_px(n: u32, co: u32, y: u32, x: u32, v: vec2<f32>) {
    if (co >= C_OUT) { return; }
    let o = ((n * C_OUT + co) * H + y) * W + x;
    output[o] = S(v.x);
    if (x + 1u < W) { output[o + 1u] = S(v.y); }
}

// The output transform of group `g` (channels co .. co + 3) of the tile at (y, x).
fn finish(g: u32, n: u32, co: u32, y: u32, x: u32) {
    let c0 = out_col(g, 0u);
    let c1 = out_col(g, 1u);
    let c2 = out_col(g, 2u);
    let c3 = out_col(g, 3u);
    let b = vec4<f32>(f32(bias[co]), f32(bias[co + 1u]), f32(bias[co + 2u]),
                      f32(bias[co + 3u]));
    put_row(n, co, y, x, at2(c0[0], c1[0], c2[0], c3[0]), b);
    put_row(n, co, y + 1u, x, at2(c0[1], c1[1], c2[1], c3[1]), b);
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

    let wblock = wid.y * C_IN * 32u;
    let lane = sid % 8u;
    neighbours(tile, lane);
    for (var ci = 0u; ci < C_IN; ci++) {
        let plane = (tile.n * C_IN + ci) * H * W;
        let e = bt_rows(patch_row(plane, 0u), patch_row(plane, 1u), patch_row(plane, 2u),
                        patch_row(plane, 3u));
        let wb = wblock + ci * 32u + lane;
        wv = array<vec4<f32>, 4>(weight[wb], weight[wb + 8u], weight[wb + 16u],
                                 weight[wb + 24u]);
        mac_row(0u, bt_row(e[0]));
        mac_row(1u, bt_row(e[1]));
        mac_row(2u, bt_row(e[2]));
        mac_row(3u, bt_row(e[3]));
    }

    finish_tile(tile, wid.y * TM);
}
