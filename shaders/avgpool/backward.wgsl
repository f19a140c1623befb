// The adaptive average pool's input gradient: dx[y, x] sums dy[oy, ox] / |window| over the
// output bins whose window (PyTorch's: rows floor(oy * H / OH) up to ceil((oy + 1) * H / OH),
// likewise columns) holds (y, x). Windows overlap when H is not a multiple of OH, and
// repeat one input when the pool upsamples (a 1x1 map to 7x7): one invocation per input
// element gathers them, in a fixed order, so no two lanes write one value.

#include "kernel/elements"

override N: u32;
override C: u32;
override H: u32;
override W: u32;
override OH: u32 = 7u;
override OW: u32 = 7u;

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;

fn elements() -> u32 { return N * C * H * W; }

fn element(i: u32) {
    let plane = i / (H * W);
    let y = (i / W) % H;
    let x = i % W;
    // The bins that can hold row y: from floor(y * OH / H) to below ceil((y + 1) * OH / H);
    // each is checked against its own window below.
    let oy0 = y * OH / H;
    let oy1 = min(OH, ((y + 1u) * OH + H - 1u) / H);
    let ox0 = x * OW / W;
    let ox1 = min(OW, ((x + 1u) * OW + W - 1u) / W);
    var acc = 0.0;
    for (var oy = oy0; oy < oy1; oy++) {
        let y0 = oy * H / OH;
        let y1 = ((oy + 1u) * H + OH - 1u) / OH;
        if (y < y0 || y >= y1) { continue; }
        for (var ox = ox0; ox < ox1; ox++) {
            let x0 = ox * W / OW;
            let x1 = ((ox + 1u) * W + OW - 1u) / OW;
            if (x < x0 || x >= x1) { continue; }
            acc += dy[(plane * OH + oy) * OW + ox] / f32((y1 - y0) * (x1 - x0));
        }
    }
    dx[i] = acc;
}
