// Batch norm backward, step 1: per channel, sum(dy) and sum(dy * xhat), which are also
// dbeta and dgamma. sums[c] = (sum dy, sum dy * xhat); ACCUMULATE adds to dgamma and dbeta
// (micro-batches) while sums always holds this batch's values for step 2.

override N: u32;
override C: u32;
override HW: u32;
override ACCUMULATE: bool = false;
const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> sums: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(5) var<storage, read_write> dbeta: array<f32>;

var<workgroup> red: array<vec2<f32>, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let c = wid.x + wid.z * nwg.x;
    if (c >= C) { return; }
    let st = stats[c];
    var s = vec2<f32>(0.0);
    for (var n = 0u; n < N; n++) {
        for (var p = lid; p < HW; p += WG) {
            let i = (n * C + c) * HW + p;
            let g = dy[i];
            s += vec2<f32>(g, g * (x[i] - st.x) * st.y);
        }
    }
    red[lid] = s;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k /= 2u) {
        if (lid < k) { red[lid] += red[lid + k]; }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let t = red[0];
        sums[c] = t;
        if (ACCUMULATE) {
            dgamma[c] += t.y;
            dbeta[c] += t.x;
        } else {
            dgamma[c] = t.y;
            dbeta[c] = t.x;
        }
    }
}
