// The FC layer's gradients for one row chunk of the weight (rows ROW0 .. ROW0 + ROWS of
// [N_OUT, K], the split the forward uses): entry `dx` computes dx[m, k] (+)= sum over the
// chunk's rows o of dy[m, ROW0 + o] * w[o, k]; entry `dw` computes dw[o, k] (+)= sum over
// m of dy[m, ROW0 + o] * x[m, k]. ACCUMULATE adds (later chunks into dx; micro-batches
// into dw). One output element per invocation.

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

// a = the weight chunk [ROWS, K]; out = dx [M, K].
@compute @workgroup_size(WG)
fn dx(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
      @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= M * K) { return; }
    let m = i / K;
    let k = i % K;
    var s = 0.0;
    for (var o = 0u; o < ROWS; o++) { s = fma(dy[m * N_OUT + ROW0 + o], a[o * K + k], s); }
    store(i, s);
}

// a = the layer input x [M, K]; out = the chunk's dw [ROWS, K].
@compute @workgroup_size(WG)
fn dw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
      @builtin(local_invocation_index) lid: u32) {
    let i = index(wid, nwg, lid);
    if (i >= ROWS * K) { return; }
    let o = i / K;
    let k = i % K;
    var s = 0.0;
    for (var m = 0u; m < M; m++) { s = fma(dy[m * N_OUT + ROW0 + o], a[m * K + k], s); }
    store(i, s);
}
