// Batch norm backward, step 1: per channel, sum(dy) and sum(dy * xhat), which are also
// dbeta and dgamma. sums[c] = (sum dy, sum dy * xhat); ACCUMULATE adds to dgamma and dbeta
// (micro-batches) while sums always holds this batch's values for step 2.

#include "kernel/workgroups"
#include "kernel/planes"

override ACCUMULATE: bool = false;
const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> stats: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> sums: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(5) var<storage, read_write> dbeta: array<f32>;

var<workgroup> red: array<vec2<f32>, WG>;

// One workgroup per channel.
fn work_groups() -> u32 {
    return C;
}

fn work_group(c: u32, lid: u32) {
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
