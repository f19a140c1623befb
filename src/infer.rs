//! Classification and feature extraction over image files: input collection, batching,
//! per-file error handling. The `vgg infer` command is a thin layer over this.

use crate::error::{Error, Result};
use crate::graph::{Network, PROB};
use crate::io::image::Preprocess;
use crate::io::labels::top_k;
use crate::model::Tensor;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What one image produced.
#[derive(Clone, Debug)]
pub struct ImageResult {
    pub path: PathBuf,
    /// (class index, probability), best first; empty when extracting features.
    pub top: Vec<(usize, f32)>,
}

/// Progress and outcome of a run.
#[derive(Debug, Default)]
pub struct RunStats {
    pub images: usize,
    pub skipped: Vec<Error>,
    /// Wall time of decoding and preprocessing.
    pub decode: Duration,
    /// Wall time of the forward passes, readback included.
    pub forward: Duration,
}

/// How `run` treats the images.
#[derive(Clone, Debug)]
pub struct Options<'a> {
    pub pre: Preprocess,
    pub batch_size: usize,
    /// Classes reported per image.
    pub top: usize,
    /// Stop at the first unreadable file, before classifying any.
    pub strict: bool,
    /// Collect this layer's output instead of classifying.
    pub features: Option<&'a str>,
    /// The paper's dense evaluation: no crop, FC layers as convolutions over the whole
    /// image, class posteriors averaged over positions and over the mirrored image.
    pub dense: bool,
}

/// Batches `files` through `net`, calling `on_result` for each classified image in order.
/// With `features`, the named layer's output is collected (rows in file order) instead of
/// class probabilities. A file that cannot be decoded is skipped and recorded, or, with
/// `strict`, ends the run with its error before any image is classified.
pub fn run(
    net: &mut Network<'_>,
    files: &[PathBuf],
    o: &Options<'_>,
    mut on_result: impl FnMut(&ImageResult),
) -> Result<(RunStats, Option<Tensor>, Vec<PathBuf>)> {
    let (pre, batch_size, top, strict, features) =
        (&o.pre, o.batch_size, o.top, o.strict, o.features);
    if batch_size == 0 {
        return Err(Error::InvalidOption {
            option: "--batch-size".into(),
            message: "must be at least 1".into(),
        });
    }
    if o.dense {
        return run_dense(net, files, o, on_result);
    }
    pre.validate()?;
    if strict {
        for f in files {
            pre.load(f)?;
        }
    }
    let [c, h, w] = net.model().input_dims();
    let per = c * h * w;
    let mut stats = RunStats::default();
    let mut feats: Option<Tensor> = None;
    let mut kept = Vec::new();
    let mut pending: Vec<(PathBuf, Vec<f32>)> = Vec::new();
    let mut flush = |pending: &mut Vec<(PathBuf, Vec<f32>)>,
                     stats: &mut RunStats,
                     feats: &mut Option<Tensor>|
     -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let n = pending.len();
        let mut data = Vec::with_capacity(n * per);
        for (_, x) in pending.iter() {
            data.extend_from_slice(x);
        }
        let x = Tensor::new(vec![n, c, h, w], data)?;
        let t = Instant::now();
        let layer = features.unwrap_or(PROB);
        let out = net.forward_features(&x, layer)?;
        stats.forward += t.elapsed();
        let row = out.data.len() / n;
        if let Some(i) = out.data.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite(format!(
                "{}: the forward gave {} at {layer}: the weights overflow f32 arithmetic (a \
                 value near 3e38, or a product of large ones)",
                pending[i / row.max(1)].0.display(),
                out.data[i]
            )));
        }
        for (i, (path, _)) in pending.iter().enumerate() {
            let top = if features.is_some() {
                Vec::new()
            } else {
                top_k(out.row(i), top)
            };
            on_result(&ImageResult {
                path: path.clone(),
                top,
            });
            kept.push(path.clone());
        }
        stats.images += n;
        if features.is_some() {
            match feats {
                None => *feats = Some(out),
                Some(f) => {
                    f.shape[0] += out.shape[0];
                    f.data.extend_from_slice(&out.data);
                }
            }
        }
        pending.clear();
        Ok(())
    };
    for f in files {
        let t = Instant::now();
        let decoded = pre.load(f).and_then(|img| pre.apply(&img));
        stats.decode += t.elapsed();
        match decoded {
            Ok(x) if x.len() == per => pending.push((f.clone(), x)),
            Ok(x) => {
                return Err(Error::Shape(format!(
                    "{} preprocesses to {} values, the model takes {c}x{h}x{w} = {per}; set \
                     --crop to the model's input size",
                    f.display(),
                    x.len()
                )))
            }
            Err(e) if strict => return Err(e),
            Err(e) => stats.skipped.push(e),
        }
        if pending.len() == batch_size {
            flush(&mut pending, &mut stats, &mut feats)?;
        }
    }
    flush(&mut pending, &mut stats, &mut feats)?;
    Ok((stats, feats, kept))
}

/// Dense evaluation, one image (and its mirror image, in the same forward) at a time:
/// images keep their aspect ratio, so each has its own size.
fn run_dense(
    net: &mut Network<'_>,
    files: &[PathBuf],
    o: &Options<'_>,
    mut on_result: impl FnMut(&ImageResult),
) -> Result<(RunStats, Option<Tensor>, Vec<PathBuf>)> {
    if o.features.is_some() {
        return Err(Error::InvalidOption {
            option: "--dense".into(),
            message: "dense evaluation classifies; it does not extract --features".into(),
        });
    }
    let pre = Preprocess {
        crop: None,
        ..o.pre.clone()
    };
    pre.validate()?;
    if o.strict {
        for f in files {
            pre.load(f)?;
        }
    }
    let mut stats = RunStats::default();
    let mut kept = Vec::new();
    for f in files {
        let t = Instant::now();
        let img = match pre.load(f) {
            Ok(img) => img,
            Err(e) if o.strict => return Err(e),
            Err(e) => {
                stats.skipped.push(e);
                continue;
            }
        };
        let g = pre.geometry(&img)?;
        let mirror = crate::io::image::flip_horizontal(&g);
        let (w, h) = (g.width() as usize, g.height() as usize);
        let mut data = pre.tensor(&g);
        data.extend(pre.tensor(&mirror));
        stats.decode += t.elapsed();
        let t = Instant::now();
        net.set_input_size(h, w)?;
        let c = pre.channels();
        let scores = net.forward_dense(&Tensor::new(vec![2, c, h, w], data)?)?;
        stats.forward += t.elapsed();
        if let Some(v) = scores.data.iter().find(|v| !v.is_finite()) {
            return Err(Error::NonFinite(format!(
                "{}: the forward gave {v}: the weights overflow f32 arithmetic",
                f.display()
            )));
        }
        let probs = dense_posteriors(&scores);
        on_result(&ImageResult {
            path: f.clone(),
            top: top_k(&probs, o.top),
        });
        kept.push(f.clone());
        stats.images += 1;
    }
    Ok((stats, None, kept))
}

/// Class scores [views, positions, classes] to one posterior: each view's scores averaged
/// over positions, a softmax per view, then the views' posteriors averaged (the paper).
pub fn dense_posteriors(scores: &Tensor) -> Vec<f32> {
    let (views, positions, classes) = (scores.shape[0], scores.shape[1], scores.shape[2]);
    let mut out = vec![0.0f64; classes];
    for v in 0..views {
        let mut mean = vec![0.0f64; classes];
        for p in 0..positions {
            let row = &scores.data[(v * positions + p) * classes..][..classes];
            for (m, s) in mean.iter_mut().zip(row) {
                *m += *s as f64 / positions as f64;
            }
        }
        let max = mean.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = mean.iter().map(|m| (m - max).exp()).sum();
        for (o, m) in out.iter_mut().zip(&mean) {
            *o += (m - max).exp() / sum / views as f64;
        }
    }
    out.into_iter().map(|v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_posteriors_average_positions_then_views() {
        // Two views, two positions, two classes.
        let s = Tensor::new(vec![2, 2, 2], vec![1.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0]).unwrap();
        let p = dense_posteriors(&s);
        // View 0: mean scores (2, 0) -> softmax (0.8808, 0.1192); view 1: (0.5, 0.5).
        let e = 1.0 / (1.0 + (-2.0f64).exp());
        assert!((p[0] as f64 - (e + 0.5) / 2.0).abs() < 1e-6, "{p:?}");
        assert!((p[0] + p[1] - 1.0).abs() < 1e-6);
    }
}
