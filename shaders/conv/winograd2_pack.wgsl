// Transforms canonical conv weights [c_out, c_in, 3, 3] into the F(2x2, 3x3) Winograd
// variant's layout [c_out / 8][c_in][16][8] (winograd2.wgsl), U = G g G^T per kernel, zero
// padded to whole blocks of 8 channels, as winograd_pack.wgsl does for F(4x4, 3x3): one
// invocation per (output channel, input channel) pair, 9 loads and 16 stores.

#include "kernel/elements"

override C_IN: u32;
override C_OUT: u32;

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;

// Row a of Winograd F(2x2, 3x3)'s G.
fn g_row(a: u32) -> vec3<f32> {
    switch a {
        case 0u: { return vec3<f32>(1.0, 0.0, 0.0); }
        case 1u: { return vec3<f32>(0.5, 0.5, 0.5); }
        case 2u: { return vec3<f32>(0.5, -0.5, 0.5); }
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
    let out = ((co / 8u) * C_IN + ci) * 128u + co % 8u;
    for (var b = 0u; b < 4u; b++) {
        let gb = g_row(b);
        let t = vec3<f32>(dot(r0, gb), dot(r1, gb), dot(r2, gb));
        for (var a = 0u; a < 4u; a++) {
            dst[out + (a * 4u + b) * 8u] = dot(g_row(a), t);
        }
    }
}
