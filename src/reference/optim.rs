//! The optimiser: PyTorch's SGD with momentum and weight decay.
/// One step of PyTorch's SGD with momentum and weight decay (dampening 0, not Nesterov):
/// d = g + wd * w; v = momentum * v + d; w -= lr * v.
pub fn sgd(w: &mut [f32], g: &[f32], v: &mut [f32], lr: f64, momentum: f64, wd: f64) {
    for i in 0..w.len() {
        let d = g[i] as f64 + wd * w[i] as f64;
        let vi = momentum * v[i] as f64 + d;
        v[i] = vi as f32;
        w[i] = (w[i] as f64 - lr * vi) as f32;
    }
}
