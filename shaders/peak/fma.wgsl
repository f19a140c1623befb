// The adapter's arithmetic peak: every invocation runs four independent chains of vec4
// multiply-adds (16 FMA lanes in flight, enough to hide FMA latency), then stores their sum
// so nothing can be optimised away. Work: invocations * ITERS * 16 FMA.

#include "kernel/elements"

override ITERS: u32 = 512u;
override LEN: u32;

@group(0) @binding(0) var<storage, read_write> output: array<vec4<f32>>;

fn elements() -> u32 { return LEN; }

fn element(i: u32) {
    let s = f32(i % 1024u) * 1e-3;
    var a = vec4<f32>(s, s + 0.1, s + 0.2, s + 0.3);
    var b = a + 0.5;
    var c = a + 1.0;
    var d = a + 1.5;
    let m = vec4<f32>(0.999);
    let k = vec4<f32>(0.001);
    for (var t = 0u; t < ITERS; t++) {
        a = fma(a, m, k);
        b = fma(b, m, k);
        c = fma(c, m, k);
        d = fma(d, m, k);
    }
    output[i] = a + b + c + d;
}
