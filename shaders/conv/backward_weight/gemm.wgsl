// A convolution's weight gradient (stride 1, padding KS / 2, KS 1 or 3) as an implicit
// GEMM: dw[co, (ci, ky, kx)] = sum over p = (n, y, x) of dy[n, co, y, x] *
// x[n, ci, y + ky - pad, x + kx - pad], an [c_out] x [c_in * KS * KS] product whose
// reduction runs over every pixel of the batch.
//
// A workgroup of WG lanes computes a block of 4 output x 4 input channels (all their
// taps: 144 sums in registers per lane) over one chunk of the pixels; the pixels are split
// in CHUNKS chunks (split-K) so that early layers, with few channels and many pixels, still
// fill the GPU. Each lane takes groups of 4 adjacent pixels of one row: per group it loads
// 4 dy values per output channel and the 3 x 6 input window per input channel, and each
// loaded value feeds 4 to 12 multiply-adds (dot products over the 4 pixels), where the
// former kernel (one invocation per channel pair, looping over every pixel) loaded one
// value per multiply-add.
//
// The lanes' sums then meet in workgroup memory and are added in lane order, and the
// chunks' partial sums (out: [CHUNKS][C_OUT][C_IN][KS * KS]) are added in chunk order by
// backward_weight/reduce.wgsl; with one chunk this kernel writes dw itself (ACCUMULATE adds to it).
// Where a chunk has fewer items than the workgroup has lanes, the entry point `lanes`
// gives each lane a chunk of its own instead (below).
// No float atomics and no order that depends on scheduling: the result is bitwise the
// same run to run.

#include "conv/backward_weight/header"
#include "kernel/workgroups"

override CHUNKS: u32;
// Work items each lane takes per chunk.
override PER: u32;
// The chunks cover spans of SPAN work items, CPI chunks to a span: one span of every item
// (SPAN = all of them, CPI = CHUNKS), or one span per image (SPAN = an image's items), so
// that the chunks of a group of images are the chunks of those images in the whole batch:
// a trainer that runs a batch in groups of images gets the same partial sums, bit for bit.
override SPAN: u32;
override CPI: u32;
// Output rows per work item.
const ROWS: u32 = 8u;

// Lanes per workgroup, 8 to 32 (the host's choice per adapter).
override WG: u32 = 32u;
const BO: u32 = 4u;
const BI: u32 = 4u;
const ACC: u32 = 144u;

// [ACC][WG]: every lane's sums, for the fixed-order reduction.
var<workgroup> sums: array<f32, 4608>;

// This lane's sums: component m of acc[c * 9 + ky * 3 + kx] for output channel co0 + m
// and input channel ci0 + c. Indexed by constants only (the helpers are inlined), so they
// stay in registers: one index computed at run time would move them to memory.
var<private> acc: array<vec4<f32>, 36>;

// dy of 4 adjacent pixels (0 past the row's end or past the channels).
fn dy4(n: u32, co: u32, y: u32, x0: u32) -> vec4<f32> {
    let ok = co < C_OUT;
    let base = (n * C_OUT + min(co, C_OUT - 1u)) * H * W + y * W;
    let last = W - 1u;
    return vec4<f32>(
        select(0.0, dy[base + x0], ok),
        select(0.0, dy[base + min(x0 + 1u, last)], ok && x0 + 1u < W),
        select(0.0, dy[base + min(x0 + 2u, last)], ok && x0 + 2u < W),
        select(0.0, dy[base + min(x0 + 3u, last)], ok && x0 + 3u < W));
}

// Input row iy from column x0 - pad, KS + 3 values (0 outside the image or channels).
fn window(plane: u32, ok: bool, iy: i32, x0: u32) -> array<f32, 6> {
    var r: array<f32, 6>;
    let row_ok = ok && iy >= 0 && iy < i32(H);
    let row = plane + u32(clamp(iy, 0, i32(H) - 1)) * W;
    let pad = i32(KS / 2u);
    for (var j = 0; j < 6; j++) {
        let ix = i32(x0) + j - pad;
        let inside = row_ok && ix >= 0 && ix < i32(W);
        r[j] = select(0.0, input[row + u32(clamp(ix, 0, i32(W) - 1))], inside);
    }
    return r;
}

// The taps of kernel row ky of input channel c (slot c of the block) for the 4 output
// channels: 12 dot products over the 4 pixels (4 for a 1x1 kernel).
fn taps(c: u32, ky: u32, r: array<f32, 6>, d: array<vec4<f32>, 4>) {
    let b = c * 9u + ky * 3u;
    let v0 = vec4<f32>(r[0], r[1], r[2], r[3]);
    acc[b] += vec4<f32>(dot(d[0], v0), dot(d[1], v0), dot(d[2], v0), dot(d[3], v0));
    if (KS == 3u) {
        let v1 = vec4<f32>(r[1], r[2], r[3], r[4]);
        let v2 = vec4<f32>(r[2], r[3], r[4], r[5]);
        acc[b + 1u] += vec4<f32>(dot(d[0], v1), dot(d[1], v1), dot(d[2], v1), dot(d[3], v1));
        acc[b + 2u] += vec4<f32>(dot(d[0], v2), dot(d[1], v2), dot(d[2], v2), dot(d[3], v2));
    }
}

// Tap t of the 4 input channels into workgroup memory, at [((m * BI + c) * 9 + t) * WG + lane].
fn spill(t: u32, lid: u32) {
    spill4(t, lid, acc[t]);
    spill4(9u + t, lid, acc[9u + t]);
    spill4(18u + t, lid, acc[18u + t]);
    spill4(27u + t, lid, acc[27u + t]);
}

fn spill4(a: u32, lid: u32, v: vec4<f32>) {
    sums[a * WG + lid] = v.x;
    sums[(36u + a) * WG + lid] = v.y;
    sums[(72u + a) * WG + lid] = v.z;
    sums[(108u + a) * WG + lid] = v.w;
}

// Each input channel's rows y - 1 and y of the window (3x3 kernels), carried from one
// output row to the next, so a row step loads one new input row per channel, not three.
var<private> top: array<array<f32, 6>, 4>;
var<private> mid: array<array<f32, 6>, 4>;

fn plane_of(n: u32, ci: u32) -> u32 {
    return (n * C_IN + min(ci, C_IN - 1u)) * H * W;
}

// The rows above and at output row y for slot c (input channel ci).
fn prime(c: u32, n: u32, ci: u32, y: u32, x0: u32) {
    if (KS == 3u) {
        top[c] = window(plane_of(n, ci), ci < C_IN, i32(y) - 1, x0);
        mid[c] = window(plane_of(n, ci), ci < C_IN, i32(y), x0);
    }
}

// Slot c's contribution at output row y, then the rows move down by one.
fn row_step(c: u32, n: u32, ci: u32, y: u32, x0: u32, d: array<vec4<f32>, 4>) {
    let ok = ci < C_IN;
    if (KS == 3u) {
        let bot = window(plane_of(n, ci), ok, i32(y) + 1, x0);
        taps(c, 0u, top[c], d);
        taps(c, 1u, mid[c], d);
        taps(c, 2u, bot, d);
        top[c] = mid[c];
        mid[c] = bot;
    } else {
        taps(c, 0u, window(plane_of(n, ci), ok, i32(y), x0), d);
    }
}

// The work items: a column of 4 pixels over up to ROWS output rows of one image.
fn items() -> u32 {
    return N * ((H + ROWS - 1u) / ROWS) * ((W + 3u) / 4u);
}

// Work item g's contribution to this lane's sums for the block at (co0, ci0).
fn item(g: u32, co0: u32, ci0: u32) {
    let gx = (W + 3u) / 4u;
    let segs = (H + ROWS - 1u) / ROWS;
    let n = g / (segs * gx);
    let y0 = (g / gx) % segs * ROWS;
    let x0 = (g % gx) * 4u;
    prime(0u, n, ci0, y0, x0);
    prime(1u, n, ci0 + 1u, y0, x0);
    prime(2u, n, ci0 + 2u, y0, x0);
    prime(3u, n, ci0 + 3u, y0, x0);
    for (var y = y0; y < min(H, y0 + ROWS); y++) {
        let d = array<vec4<f32>, 4>(dy4(n, co0, y, x0), dy4(n, co0 + 1u, y, x0),
                                    dy4(n, co0 + 2u, y, x0), dy4(n, co0 + 3u, y, x0));
        row_step(0u, n, ci0, y, x0, d);
        row_step(1u, n, ci0 + 1u, y, x0, d);
        row_step(2u, n, ci0 + 2u, y, x0, d);
        row_step(3u, n, ci0 + 3u, y, x0, d);
    }
}

// Workgroups over the chunks x the blocks of BO output and BI input channels.
fn work_groups() -> u32 {
    return CHUNKS * ((C_OUT + BO - 1u) / BO) * ((C_IN + BI - 1u) / BI);
}

fn work_group(linear: u32, lid: u32) {
    let bo = (C_OUT + BO - 1u) / BO;
    let bi = (C_IN + BI - 1u) / BI;
    let chunk = linear / (bo * bi);
    let co0 = (linear % (bo * bi)) / bi * BO;
    let ci0 = linear % bi * BI;
    let taps = KS * KS;

    for (var it = 0u; it < PER; it++) {
        let span = chunk / CPI;
        let g = span * SPAN + ((chunk % CPI) * PER + it) * WG + lid;
        if (g >= min(items(), (span + 1u) * SPAN)) { break; }
        item(g, co0, ci0);
    }

    spill(0u, lid);
    spill(1u, lid);
    spill(2u, lid);
    spill(3u, lid);
    spill(4u, lid);
    spill(5u, lid);
    spill(6u, lid);
    spill(7u, lid);
    spill(8u, lid);
    workgroupBarrier();
    for (var a = lid; a < ACC; a += WG) {
        let m = a / (BI * 9u);
        let c = (a / 9u) % BI;
        let t = a % 9u;
        let co = co0 + m;
        let ci = ci0 + c;
        if (co >= C_OUT || ci >= C_IN || t >= taps) { continue; }
        var s = 0.0;
        for (var l = 0u; l < WG; l++) { s += sums[a * WG + l]; }
        let o = chunk * C_OUT * C_IN * taps + (co * C_IN + ci) * taps + t;
        if (ACCUMULATE && CHUNKS == 1u) { out[o] += s; } else { out[o] = s; }
    }
}

// Lane by lane, where a chunk has fewer work items than the workgroup has lanes (small
// maps, a chunk per image): each lane sums one chunk by itself and writes its partial sums
// straight out, with no workgroup reduction, and the WG lanes of a workgroup take WG
// chunks of the same channel block. A chunk is PER consecutive items of its span (`main`
// interleaves its lanes' items instead), summed in item order, so the partial sums are
// still a function of the chunk alone: a group of images gets its images' partial sums of
// the whole batch, bit for bit.
@compute @workgroup_size(WG)
fn lanes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
    let bi = (C_IN + BI - 1u) / BI;
    let blocks = (C_OUT + BO - 1u) / BO * bi;
    let linear = wid.x + wid.z * nwg.x;
    let chunk = linear / blocks * WG + lid;
    if (chunk >= CHUNKS) { return; }
    let co0 = (linear % blocks) / bi * BO;
    let ci0 = linear % bi * BI;
    let span = chunk / CPI;
    for (var it = 0u; it < PER; it++) {
        let g = span * SPAN + (chunk % CPI) * PER + it;
        if (g >= min(items(), (span + 1u) * SPAN)) { break; }
        item(g, co0, ci0);
    }
    emit(0u, chunk, co0, ci0);
    emit(1u, chunk, co0, ci0);
    emit(2u, chunk, co0, ci0);
    emit(3u, chunk, co0, ci0);
    emit(4u, chunk, co0, ci0);
    emit(5u, chunk, co0, ci0);
    emit(6u, chunk, co0, ci0);
    emit(7u, chunk, co0, ci0);
    emit(8u, chunk, co0, ci0);
}

// Tap t of this lane's sums (the 4 x 4 channel block) into chunk's partial sums.
fn emit(t: u32, chunk: u32, co0: u32, ci0: u32) {
    emit4(t, chunk, co0, ci0, acc[t]);
    emit4(t, chunk, co0, ci0 + 1u, acc[9u + t]);
    emit4(t, chunk, co0, ci0 + 2u, acc[18u + t]);
    emit4(t, chunk, co0, ci0 + 3u, acc[27u + t]);
}

// Output channels co0..co0 + 3 of input channel ci at tap t.
fn emit4(t: u32, chunk: u32, co0: u32, ci: u32, v: vec4<f32>) {
    put(t, chunk, co0, ci, v.x);
    put(t, chunk, co0 + 1u, ci, v.y);
    put(t, chunk, co0 + 2u, ci, v.z);
    put(t, chunk, co0 + 3u, ci, v.w);
}

fn put(t: u32, chunk: u32, co: u32, ci: u32, s: f32) {
    let taps = KS * KS;
    if (co >= C_OUT || ci >= C_IN || t >= taps) { return; }
    let o = chunk * C_OUT * C_IN * taps + (co * C_IN + ci) * taps + t;
    if (ACCUMULATE && CHUNKS == 1u) { out[o] += s; } else { out[o] = s; }
}
