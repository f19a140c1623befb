// 2x2 max pooling, stride 2, floor for odd sizes. One invocation per output element.
// `main_index` also writes the flat index iy * W + ix of the maximum within its input plane
// (PyTorch's return_indices), for the backward pass. NaN wins, as in PyTorch.

#include "kernel/nchw"
#include "kernel/nan"

override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> input: array<S>;
@group(0) @binding(1) var<storage, read_write> output: array<S>;
@group(0) @binding(2) var<storage, read_write> argmax: array<u32>;

struct Max { value: f32, index: u32 }

fn pool(i: u32) -> Max {
    let oh = H / 2u;
    let ow = W / 2u;
    let plane = i / (oh * ow);
    let r = i % (oh * ow);
    let oy = r / ow;
    let ox = r % ow;
    var best = Max(0.0, 0u);
    for (var t = 0u; t < 4u; t++) {
        let idx = (oy * 2u + t / 2u) * W + ox * 2u + t % 2u;
        let v = f32(input[plane * H * W + idx]);
        // The first NaN of the window wins, as in the reference (`kernel/nan`: a GLSL
        // compiler may fold v != v to false).
        if (t == 0u || v > best.value || (is_nan(v) && !is_nan(best.value))) {
            best = Max(v, idx);
        }
    }
    return best;
}

fn out_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.x + wid.z * nwg.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = out_index(wid, nwg, lid);
    if (i >= N * C * (H / 2u) * (W / 2u)) { return; }
    output[i] = S(pool(i).value);
}

@compute @workgroup_size(WG)
fn main_index(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let i = out_index(wid, nwg, lid);
    if (i >= N * C * (H / 2u) * (W / 2u)) { return; }
    let m = pool(i);
    output[i] = S(m.value);
    argmax[i] = m.index;
}
