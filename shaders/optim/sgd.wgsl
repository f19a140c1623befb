// One fused SGD step with momentum and weight decay, PyTorch's semantics (dampening 0):
// d = g + wd * w; v = momentum * v + d; w -= lr * v. The hyperparameters come from a
// buffer (lr, momentum, wd) so a schedule changes them without new pipelines.

override LEN: u32;
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read_write> w: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> v: array<f32>;
@group(0) @binding(3) var<storage, read> hyper: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.z * nwg.x) * WG + lid;
    if (i >= LEN) { return; }
    let d = g[i] + hyper[2] * w[i];
    let vi = hyper[1] * v[i] + d;
    v[i] = vi;
    w[i] = w[i] - hyper[0] * vi;
}
