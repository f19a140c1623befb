// Batch norm backward, step 2: dx = gamma * invstd / M * (M * dy - sum(dy) - xhat *
// sum(dy * xhat)), M = N * HW, with the sums from bn_backward_reduce.

override N: u32;
override C: u32;
override HW: u32;
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read> sums: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.z * nwg.x) * WG + lid;
    if (i >= N * C * HW) { return; }
    let c = (i / HW) % C;
    let st = stats[c];
    let sm = sums[c];
    let m = f32(N * HW);
    let xhat = (x[i] - st.x) * st.y;
    dx[i] = gamma[c] * st.y / m * (m * dy[i] - sm.x - xhat * sm.y);
}
