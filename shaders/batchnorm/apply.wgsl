// Batch norm in training form, step 2: y = gamma * (x - mean) * invstd + beta with the
// batch statistics from bn_stats, optionally followed by ReLU. One invocation per element.

override N: u32;
override C: u32;
override HW: u32;
override RELU: bool = false;
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.z * nwg.x) * WG + lid;
    if (i >= N * C * HW) { return; }
    let c = (i / HW) % C;
    let st = stats[c];
    var v = (x[i] - st.x) * st.y * gamma[c] + beta[c];
    if (RELU) { v = max(v, 0.0); }
    y[i] = v;
}
