//! Softmax, and softmax cross-entropy with its gradient (the training loss).

use super::{f, Real};

/// Softmax over the last dimension of a [rows, cols] matrix, shifted by the row maximum.
pub fn forward(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    assert_eq!(x.len(), rows * cols);
    let mut out = vec![0.0f32; rows * cols];
    for r in 0..rows {
        let row = &x[r * cols..(r + 1) * cols];
        let max = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
        let sum: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
        for c in 0..cols {
            out[r * cols + c] = ((row[c] as f64 - max).exp() / sum) as f32;
        }
    }
    out
}

/// Softmax cross-entropy over [rows, cols] logits with integer labels: the mean loss, the
/// gradient scaled by `scale` (1/rows for the mean; 1/logical batch when micro-batches
/// accumulate), and how many rows' argmax equals the label.
pub fn xent<T: Real>(
    z: &[T],
    rows: usize,
    cols: usize,
    labels: &[u32],
    scale: f64,
) -> (f64, Vec<T>, usize) {
    assert_eq!(z.len(), rows * cols);
    let mut loss = 0.0;
    let mut dz = vec![T::of(0.0); z.len()];
    let mut correct = 0;
    for r in 0..rows {
        let row: Vec<f64> = z[r * cols..(r + 1) * cols].iter().map(|v| f(*v)).collect();
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
        let label = labels[r] as usize;
        loss += sum.ln() + max - row[label];
        let arg = (0..cols).fold(0, |b, c| if row[c] > row[b] { c } else { b });
        correct += usize::from(arg == label);
        for c in 0..cols {
            let p = (row[c] - max).exp() / sum;
            dz[r * cols + c] = T::of((p - f64::from(c == label)) * scale);
        }
    }
    (loss / rows as f64, dz, correct)
}
