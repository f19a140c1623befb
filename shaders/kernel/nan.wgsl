// NaN told by its bits (`#include "kernel/nan"`). GLSL lets a compiler assume no NaN and
// fold a float comparison that would find one (v != v to false, !(v <= 0.0) to v > 0.0):
// Mesa's OpenGL driver did, where its Vulkan driver did not. An integer test on the bits
// it must keep.

fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn is_nan4(v: vec4<f32>) -> vec4<bool> {
    return (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u);
}
