// Batch norm backward, step 2: dx = gamma * invstd / M * (M * dy - sum(dy) - xhat *
// sum(dy * xhat)), M = N * HW, with the sums from bn_backward_reduce.

#include "kernel/elements"

#include "kernel/planes"

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read> sums: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

fn elements() -> u32 { return N * C * HW; }

fn element(i: u32) {
    let c = (i / HW) % C;
    let st = stats[c];
    let sm = sums[c];
    let m = f32(N * HW);
    let xhat = (x[i] - st.x) * st.y;
    dx[i] = gamma[c] * st.y / m * (m * dy[i] - sm.x - xhat * sm.y);
}
