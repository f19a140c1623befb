// The ReLU a kernel fuses into its end (`#include "kernel/relu"`), switched on by RELU.
// It keeps NaN: max(NaN, 0.0) is left to the implementation in WGSL, and some give 0.0.
// Where f32 overflows, sums of +inf and -inf give NaN (Winograd's transforms always do,
// direct sums where signs mix); a ReLU that made it 0.0 would hide the overflow in a finite
// result instead of letting it reach the check on the logits. The CPU reference's ReLU
// keeps NaN too (`reference::relu`), and `vgg check` runs a NaN through every variant.

override RELU: bool = false;

// NaN told by its bits: GLSL lets a compiler assume no NaN and fold !(v <= 0.0) into
// v > 0.0 (Mesa's OpenGL driver did: the NaN cases failed on llvmpipe's GL, not on its
// Vulkan), while an integer test on the bits it must keep.
fn relu(v: f32) -> f32 {
    let nan = (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
    return select(0.0, v, v > 0.0 || nan);
}

fn relu4(v: vec4<f32>) -> vec4<f32> {
    let nan = (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
    return select(vec4<f32>(0.0), v, (v > vec4<f32>(0.0)) | nan);
}
