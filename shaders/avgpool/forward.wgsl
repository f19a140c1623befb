// Adaptive average pooling to [OH, OW] with PyTorch's bins: rows floor(i * H / OH) up to
// ceil((i + 1) * H / OH), likewise columns. One invocation per output element.

#include "kernel/elements"

override N: u32;
override C: u32;
override H: u32;
override W: u32;
override OH: u32 = 7u;
override OW: u32 = 7u;

@group(0) @binding(0) var<storage, read> input: array<S>;
@group(0) @binding(1) var<storage, read_write> output: array<S>;

fn elements() -> u32 { return N * C * OH * OW; }

fn element(i: u32) {
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
