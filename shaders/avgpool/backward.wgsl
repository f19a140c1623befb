// The adaptive average pool's input gradient: dx[y, x] sums dy[oy, ox] / |window| over the
// output bins whose window (avgpool/header) holds (y, x). Windows overlap when H is not a
// multiple of OH, and repeat one input when the pool upsamples (a 1x1 map to 7x7): one
// invocation per input element gathers them, in a fixed order, so no two lanes write one
// value.

#include "kernel/elements"
#include "avgpool/header"

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;

fn elements() -> u32 { return N * C * H * W; }

fn element(i: u32) {
    let plane = i / (H * W);
    let y = (i / W) % H;
    let x = i % W;
    // The bins that can hold row y: from floor(y * OH / H) to below ceil((y + 1) * OH / H);
    // each is checked against its own window below.
    let oy1 = min(OH, ((y + 1u) * OH + H - 1u) / H);
    let ox1 = min(OW, ((x + 1u) * OW + W - 1u) / W);
    var acc = 0.0;
    for (var oy = y * OH / H; oy < oy1; oy++) {
        let ys = rows(oy);
        if (y < ys.x || y >= ys.y) { continue; }
        for (var ox = x * OW / W; ox < ox1; ox++) {
            let xs = cols(ox);
            if (x < xs.x || x >= xs.y) { continue; }
            acc += dy[(plane * OH + oy) * OW + ox] / f32((ys.y - ys.x) * (xs.y - xs.x));
        }
    }
    dx[i] = acc;
}
