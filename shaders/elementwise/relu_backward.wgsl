// ReLU's gradient from its output: dx = dy where y > 0, else 0. One invocation per element.

override LEN: u32;
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.z * nwg.x) * WG + lid;
    if (i >= LEN) { return; }
    dx[i] = select(0.0, dy[i], y[i] > 0.0);
}
