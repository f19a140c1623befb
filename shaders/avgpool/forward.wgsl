// Adaptive average pooling to [OH, OW] with PyTorch's bins: rows floor(i * H / OH) up to
// ceil((i + 1) * H / OH), likewise columns. One invocation per output element.

override N: u32;
override C: u32;
override H: u32;
override W: u32;
override OH: u32 = 7u;
override OW: u32 = 7u;
override WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> input: array<S>;
@group(0) @binding(1) var<storage, read_write> output: array<S>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.z * nwg.x) * WG + lid;
    if (i >= N * C * OH * OW) { return; }
    let plane = i / (OH * OW);
    let oy = (i / OW) % OH;
    let ox = i % OW;
    let y0 = oy * H / OH;
    let y1 = ((oy + 1u) * H + OH - 1u) / OH;
    let x0 = ox * W / OW;
    let x1 = ((ox + 1u) * W + OW - 1u) / OW;
    var acc = 0.0;
    for (var y = y0; y < y1; y++) {
        for (var x = x0; x < x1; x++) {
            acc += f32(input[(plane * H + y) * W + x]);
        }
    }
    output[i] = S(acc / f32((y1 - y0) * (x1 - x0)));
}
