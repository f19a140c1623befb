// Per-channel y = x * scale[c] + shift[c], optional ReLU: batch norm in inference form,
// with scale = gamma / sqrt(var + eps) and shift = beta - mean * scale computed on the host.

override N: u32;
override C: u32;
override HW: u32;
override RELU: bool = false;
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> input: array<S>;
@group(0) @binding(1) var<storage, read> scale: array<S>;
@group(0) @binding(2) var<storage, read> shift: array<S>;
@group(0) @binding(3) var<storage, read_write> output: array<S>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.z * nwg.x) * WG + lid;
    if (i >= N * C * HW) { return; }
    let c = (i / HW) % C;
    var y = fma(f32(input[i]), f32(scale[c]), f32(shift[c]));
    if (RELU) { y = max(y, 0.0); }
    output[i] = S(y);
}
