// A conv weight [c_out][c_in][k][k] turned into the weight of its input gradient:
// [c_in][c_out][k][k], rotated by 180 degrees. For stride 1 and padding k / 2, the input
// gradient of a conv is the forward conv of dy with this weight, so it runs on the fast
// forward kernels (after repacking for them). One invocation per element.

#include "kernel/elements"

override C_IN: u32;
override C_OUT: u32;
override KS: u32;

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;

fn elements() -> u32 { return C_IN * C_OUT * KS * KS; }

fn element(i: u32) {
    let kx = i % KS;
    let ky = (i / KS) % KS;
    let co = (i / (KS * KS)) % C_OUT;
    let ci = i / (KS * KS * C_OUT);
    dst[i] = src[((co * C_IN + ci) * KS + (KS - 1u - ky)) * KS + (KS - 1u - kx)];
}
