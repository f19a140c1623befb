// The adapter's memory bandwidth: a vec4 copy, one element per invocation. Traffic: twice
// the buffer size.

override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> output: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.z * nwg.x) * WG + lid;
    if (i >= arrayLength(&output)) { return; }
    output[i] = input[i];
}
