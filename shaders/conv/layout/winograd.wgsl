// Transforms canonical conv weights [c_out, c_in, 3, 3] into a Winograd variant's layout
// [c_out / 8][c_in][T * T][8], U = G g G^T per kernel, zero padded to whole blocks of 8
// channels: T = 6 for F(4x4, 3x3) (winograd.wgsl), 4 for F(2x2, 3x3) (winograd2.wgsl).
// Training updates canonical weights and repacks them every step. One invocation per
// (output channel, input channel) pair: 9 loads, T * T stores. (One per packed element, 9
// loads each, was most of a VGG11 training step's repacking on lavapipe, where loads are
// the cost.) The host's transform (ConvTune::pack) is the same sum in f64, rounded once.

#include "kernel/elements"

override C_IN: u32;
override C_OUT: u32;
// The transform domain's side: 6 or 4.
override T: u32 = 6u;

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;

// Row a of G: F(4x4, 3x3)'s (Lavin and Gray's points 0, 1, -1, 2, -2) or F(2x2, 3x3)'s.
fn g_row(a: u32) -> vec3<f32> {
    if (T == 4u) {
        switch a {
            case 0u: { return vec3<f32>(1.0, 0.0, 0.0); }
            case 1u: { return vec3<f32>(0.5, 0.5, 0.5); }
            case 2u: { return vec3<f32>(0.5, -0.5, 0.5); }
            default: { return vec3<f32>(0.0, 0.0, 1.0); }
        }
    }
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
    return (C_OUT + 7u) / 8u * 8u * C_IN;
}

fn element(i: u32) {
    let co = i / C_IN;
    let ci = i % C_IN;
    var r0 = vec3<f32>(0.0);
    var r1 = vec3<f32>(0.0);
    var r2 = vec3<f32>(0.0);
    if (co < C_OUT) {
        let base = (co * C_IN + ci) * 9u;
        r0 = vec3<f32>(src[base], src[base + 1u], src[base + 2u]);
        r1 = vec3<f32>(src[base + 3u], src[base + 4u], src[base + 5u]);
        r2 = vec3<f32>(src[base + 6u], src[base + 7u], src[base + 8u]);
    }
    // [co / 8][ci][j][co % 8]
    let out = ((co / 8u) * C_IN + ci) * T * T * 8u + co % 8u;
    for (var b = 0u; b < T; b++) {
        let gb = g_row(b);
        // (g G^T)[:, b]: the kernel's rows against row b of G.
        let t = vec3<f32>(dot(r0, gb), dot(r1, gb), dot(r2, gb));
        for (var a = 0u; a < T; a++) {
            dst[out + (a * T + b) * 8u] = dot(g_row(a), t);
        }
    }
}
