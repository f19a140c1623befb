// What the Winograd kernels (winograd.wgsl, winograd2.wgsl) share: the edge bookkeeping of
// a tile's input patch, in the `rok`, `cok`, `roff` and `coff` arrays each declares at its
// patch's size, and the output's ReLU.

// Row and column i of the patch whose top-left input pixel is (y0, x0): whether it lies in
// the image, and its clamped offset, so loads stay in bounds and the padding reads as 0
// through a select.
fn edge(i: u32, y0: i32, x0: i32) {
    let iy = y0 + i32(i);
    let ix = x0 + i32(i);
    rok[i] = iy >= 0 && iy < i32(H);
    cok[i] = ix >= 0 && ix < i32(W);
    roff[i] = u32(clamp(iy, 0, i32(H) - 1)) * W;
    coff[i] = u32(clamp(ix, 0, i32(W) - 1));
}

// ReLU that keeps NaN. Where f32 overflows, the transform's sums of +inf and -inf give NaN
// (direct summation gives inf), and max(NaN, 0) may return 0 on some drivers: the
// overflow would then vanish into a finite result instead of reaching the check on the
// logits.
fn relu(v: vec4<f32>) -> vec4<f32> {
    return select(vec4<f32>(0.0), v, !(v <= vec4<f32>(0.0)));
}
