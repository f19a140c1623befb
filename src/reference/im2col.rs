//! Window gathering for dense evaluation.
/// Every kh x kw window (stride 1, no padding) as a row: `[n][positions][c][kh][kw]`, the
/// positions in row-major order.
pub fn forward(
    x: &[f32],
    (n, c, h, w): (usize, usize, usize, usize),
    kh: usize,
    kw: usize,
) -> Vec<f32> {
    assert_eq!(x.len(), n * c * h * w);
    let (oh, ow) = (h + 1 - kh, w + 1 - kw);
    let mut out = Vec::with_capacity(n * oh * ow * c * kh * kw);
    for b in 0..n {
        for oy in 0..oh {
            for ox in 0..ow {
                for ch in 0..c {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            out.push(x[((b * c + ch) * h + oy + ky) * w + ox + kx]);
                        }
                    }
                }
            }
        }
    }
    out
}
