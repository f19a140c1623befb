// Adaptive average pooling to [OH, OW] with PyTorch's bins (avgpool/header). One
// invocation per output element.

#include "kernel/elements"
#include "avgpool/header"

@group(0) @binding(0) var<storage, read> input: array<S>;
@group(0) @binding(1) var<storage, read_write> output: array<S>;

fn elements() -> u32 { return N * C * OH * OW; }

fn element(i: u32) {
    let plane = i / (OH * OW);
    let ys = rows((i / OW) % OH);
    let xs = cols(i % OW);
    var acc = 0.0;
    for (var y = ys.x; y < ys.y; y++) {
        for (var x = xs.x; x < xs.y; x++) {
            acc += f32(input[(plane * H + y) * W + x]);
        }
    }
    output[i] = S(acc / f32((ys.y - ys.x) * (xs.y - xs.x)));
}
