// Per-channel sums over an NCHW tensor: out[c] (+)= sum over n, h, w of x[n, c, h, w]. The
// bias gradient of a conv (and, with HW = 1, of an FC layer). One workgroup per channel:
// each image's plane is summed by a tree reduction in workgroup memory, and the images'
// sums are added one at a time, in order, onto what out holds (ACCUMULATE: gradient
// accumulation) or onto 0. So a batch summed in groups of images (a trainer splitting it
// under the binding limit) gives the same bits as the whole batch at once.

#include "kernel/workgroups"
#include "kernel/planes"

override ACCUMULATE: bool = false;
const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, WG>;

// One workgroup per channel.
fn work_groups() -> u32 {
    return C;
}

fn work_group(c: u32, lid: u32) {
    var total = 0.0;
    if (ACCUMULATE) { total = out[c]; }
    if (HW == 1u) {
        // One value per image (an FC bias): no tree to build.
        if (lid == 0u) {
            for (var n = 0u; n < N; n++) { total += x[n * C + c]; }
            out[c] = total;
        }
        return;
    }
    for (var n = 0u; n < N; n++) {
        let base = (n * C + c) * HW;
        var s = 0.0;
        for (var p = lid; p < HW; p += WG) { s += x[base + p]; }
        red[lid] = s;
        workgroupBarrier();
        for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
            if (lid < stride) { red[lid] += red[lid + stride]; }
            workgroupBarrier();
        }
        total += red[0];
        // Every lane has read red[0] before the next image overwrites it.
        workgroupBarrier();
    }
    if (lid == 0u) { out[c] = total; }
}
