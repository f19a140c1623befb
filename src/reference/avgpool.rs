//! Adaptive average pooling (PyTorch's window rule).
/// Adaptive average pooling to [oh, ow], PyTorch's bins: rows floor(i*h/oh) to
/// ceil((i+1)*h/oh), likewise for columns.
pub fn forward(
    x: &[f32],
    (n, c, h, w): (usize, usize, usize, usize),
    oh: usize,
    ow: usize,
) -> Vec<f32> {
    assert_eq!(x.len(), n * c * h * w);
    let mut out = vec![0.0f32; n * c * oh * ow];
    for p in 0..n * c {
        for oy in 0..oh {
            let (y0, y1) = (oy * h / oh, ((oy + 1) * h).div_ceil(oh));
            for ox in 0..ow {
                let (x0, x1) = (ox * w / ow, ((ox + 1) * w).div_ceil(ow));
                let mut acc = 0.0f64;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        acc += x[(p * h + iy) * w + ix] as f64;
                    }
                }
                out[(p * oh + oy) * ow + ox] = (acc / ((y1 - y0) * (x1 - x0)) as f64) as f32;
            }
        }
    }
    out
}

/// The input gradient of [`forward`]: each output's gradient spread evenly over its window
/// (windows overlap, or repeat an input when the pool upsamples), summed in f64.
pub fn backward(
    dy: &[f32],
    (n, c, h, w): (usize, usize, usize, usize),
    oh: usize,
    ow: usize,
) -> Vec<f32> {
    assert_eq!(dy.len(), n * c * oh * ow);
    let mut dx = vec![0.0f64; n * c * h * w];
    for p in 0..n * c {
        for oy in 0..oh {
            let (y0, y1) = (oy * h / oh, ((oy + 1) * h).div_ceil(oh));
            for ox in 0..ow {
                let (x0, x1) = (ox * w / ow, ((ox + 1) * w).div_ceil(ow));
                let share = dy[(p * oh + oy) * ow + ox] as f64 / ((y1 - y0) * (x1 - x0)) as f64;
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        dx[(p * h + iy) * w + ix] += share;
                    }
                }
            }
        }
    }
    dx.into_iter().map(|v| v as f32).collect()
}
