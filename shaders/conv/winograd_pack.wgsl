// Transforms canonical conv weights [c_out, c_in, 3, 3] into the Winograd variant's layout
// [c_out / 8][c_in][36][8] (winograd.wgsl), U = G g G^T per kernel, zero padded to whole
// blocks of 8 channels: training updates canonical weights and repacks them every step.
// One invocation per packed element; the host's transform (ConvTune::pack) is the same
// sum in f64, rounded once.

#include "kernel/elements"

override C_IN: u32;
override C_OUT: u32;

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;

// Row a of Winograd F(4x4, 3x3)'s G.
fn g_row(a: u32) -> vec3<f32> {
    switch a {
        case 0u: { return vec3<f32>(0.25, 0.0, 0.0); }
        case 1u: { return vec3<f32>(-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0); }
        case 2u: { return vec3<f32>(-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0); }
        case 3u: { return vec3<f32>(1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0); }
        case 4u: { return vec3<f32>(1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0); }
        default: { return vec3<f32>(0.0, 0.0, 1.0); }
    }
}

fn elements() -> u32 {
    return (C_OUT + 7u) / 8u * C_IN * 36u * 8u;
}

fn element(i: u32) {
    let m = i % 8u;
    let j = (i / 8u) % 36u;
    let ci = (i / 288u) % C_IN;
    let co = i / (288u * C_IN) * 8u + m;
    var v = 0.0;
    if (co < C_OUT) {
        let base = (co * C_IN + ci) * 9u;
        let ga = g_row(j / 6u);
        let gb = g_row(j % 6u);
        for (var y = 0u; y < 3u; y++) {
            let row = vec3<f32>(src[base + y * 3u], src[base + y * 3u + 1u],
                                src[base + y * 3u + 2u]);
            v += ga[y] * dot(row, gb);
        }
    }
    dst[i] = v;
}
