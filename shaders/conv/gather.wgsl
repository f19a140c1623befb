// The implicit GEMM's gathered input for the cooperative-matrix conv kernels: element k =
// (ci, ky, kx) of pixel q = (n, y, x) of the batch, im2col with the padding as zeros,
// converted to f16; both past their ends read as 0. The including file declares the shape
// overrides (N, C_IN, H, W, KS) and `input`.

fn gather(k: u32, q: u32) -> f16 {
    let kk = KS * KS;
    let hw = H * W;
    if (k >= C_IN * kk || q >= N * hw) {
        return f16(0.0);
    }
    let ci = k / kk;
    let r = k % kk;
    let pad = i32(KS / 2u);
    let n = q / hw;
    let p = q % hw;
    let iy = i32(p / W) + i32(r / KS) - pad;
    let ix = i32(p % W) + i32(r % KS) - pad;
    if (iy < 0 || iy >= i32(H) || ix < 0 || ix >= i32(W)) {
        return f16(0.0);
    }
    return f16(input[((n * C_IN + ci) * H + u32(iy)) * W + u32(ix)]);
}
