// The ReLU a kernel fuses into its end (`#include "kernel/relu"`), switched on by RELU.
// It keeps NaN (`kernel/nan`): max(NaN, 0.0) is left to the implementation in WGSL, and
// some give 0.0.
// Where f32 overflows, sums of +inf and -inf give NaN (Winograd's transforms always do,
// direct sums where signs mix); a ReLU that made it 0.0 would hide the overflow in a finite
// result instead of letting it reach the check on the logits. The CPU reference's ReLU
// keeps NaN too (`reference::relu`), and `vgg check` runs a NaN through every variant.

#include "kernel/nan"

override RELU: bool = false;

fn relu(v: f32) -> f32 {
    return select(0.0, v, v > 0.0 || is_nan(v));
}

fn relu4(v: vec4<f32>) -> vec4<f32> {
    return select(vec4<f32>(0.0), v, (v > vec4<f32>(0.0)) | is_nan4(v));
}
