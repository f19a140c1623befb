// The FC layer's gradients for one row chunk of the weight (rows ROW0 .. ROW0 + ROWS of
// [N_OUT, K], the split the forward uses): entry `dx` computes dx[m, k] (+)= sum over the
// chunk's rows o of dy[m, ROW0 + o] * w[o, k]; entry `dw` computes dw[o, k] (+)= sum over
// m of dy[m, ROW0 + o] * x[m, k]. ACCUMULATE adds (later chunks into dx; micro-batches
// into dw).
//
// Both are register-blocked GEMMs: an invocation computes 4 rows (of m for dx, of o for
// dw) x 8 adjacent k, so per step of the reduction it loads 8 values of the k-long operand
// and 4 of dy for 32 multiply-adds, where one output per invocation loaded two values per
// multiply-add. Adjacent lanes take adjacent k, so their loads of the long operand are
// contiguous and their dy loads the same.

override M: u32;
override K: u32;
override N_OUT: u32;
override ROW0: u32;
override ROWS: u32;
override ACCUMULATE: bool = false;
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.z * nwg.x) * WG + lid;
}

fn store(i: u32, v: f32) {
    if (ACCUMULATE) { out[i] += v; } else { out[i] = v; }
}

// 8 values of a from `base + k0` (0 past column K).
fn eight(base: u32, k0: u32) -> array<vec4<f32>, 2> {
    var v: array<f32, 8>;
    for (var t = 0u; t < 8u; t++) {
        v[t] = select(0.0, a[base + min(k0 + t, K - 1u)], k0 + t < K);
    }
    return array<vec4<f32>, 2>(vec4<f32>(v[0], v[1], v[2], v[3]),
                               vec4<f32>(v[4], v[5], v[6], v[7]));
}

// Rows r0 .. r0 + 3 (those under `rows`) x columns k0 .. k0 + 7 of `acc` to out [*, K].
fn put(acc: array<vec4<f32>, 8>, r0: u32, rows: u32, k0: u32) {
    for (var j = 0u; j < 4u; j++) {
        if (r0 + j >= rows) { break; }
        for (var t = 0u; t < 8u; t++) {
            if (k0 + t < K) { store((r0 + j) * K + k0 + t, acc[2u * j + t / 4u][t % 4u]); }
        }
    }
}

// a = the weight chunk [ROWS, K]; out = dx [M, K].
@compute @workgroup_size(WG)
fn dx(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
      @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    let kb = (K + 7u) / 8u;
    if (i >= (M + 3u) / 4u * kb) { return; }
    let m0 = i / kb * 4u;
    let k0 = i % kb * 8u;
    var acc: array<vec4<f32>, 8>;
    for (var o = 0u; o < ROWS; o++) {
        let w = eight(o * K, k0);
        for (var j = 0u; j < 4u; j++) {
            if (m0 + j < M) {
                let d = dy[(m0 + j) * N_OUT + ROW0 + o];
                acc[2u * j] = fma(vec4<f32>(d), w[0], acc[2u * j]);
                acc[2u * j + 1u] = fma(vec4<f32>(d), w[1], acc[2u * j + 1u]);
            }
        }
    }
    put(acc, m0, M, k0);
}

// a = the layer input x [M, K]; out = the chunk's dw [ROWS, K].
@compute @workgroup_size(WG)
fn dw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
      @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    let kb = (K + 7u) / 8u;
    if (i >= (ROWS + 3u) / 4u * kb) { return; }
    let o0 = i / kb * 4u;
    let k0 = i % kb * 8u;
    var acc: array<vec4<f32>, 8>;
    for (var m = 0u; m < M; m++) {
        let x = eight(m * K, k0);
        for (var j = 0u; j < 4u; j++) {
            if (o0 + j < ROWS) {
                let d = dy[m * N_OUT + ROW0 + o0 + j];
                acc[2u * j] = fma(vec4<f32>(d), x[0], acc[2u * j]);
                acc[2u * j + 1u] = fma(vec4<f32>(d), x[1], acc[2u * j + 1u]);
            }
        }
    }
    put(acc, o0, ROWS, k0);
}
