// Local response normalisation across channels with PyTorch's LocalResponseNorm semantics:
// y_c = x_c / (K + ALPHA / SIZE * sum_{j = c - SIZE/2}^{c + (SIZE-1)/2} x_j^2)^BETA,
// with zeros beyond the channel range. One invocation per element.

#include "kernel/elements"

#include "kernel/planes"

override SIZE: u32 = 5u;
override ALPHA: f32 = 1e-4;
override BETA: f32 = 0.75;
override K: f32 = 2.0;

@group(0) @binding(0) var<storage, read> input: array<S>;
@group(0) @binding(1) var<storage, read_write> output: array<S>;

fn elements() -> u32 { return N * C * HW; }

fn element(i: u32) {
    let p = i % HW;
    let c = (i / HW) % C;
    let n = i / (HW * C);
    let lo = i32(c) - i32(SIZE / 2u);
    let hi = min(c + (SIZE - 1u) / 2u, C - 1u);
    var sq = 0.0;
    for (var j = u32(max(lo, 0)); j <= hi; j++) {
        let v = f32(input[(n * C + j) * HW + p]);
        sq = fma(v, v, sq);
    }
    output[i] = S(f32(input[i]) * pow(K + ALPHA / f32(SIZE) * sq, -BETA));
}
