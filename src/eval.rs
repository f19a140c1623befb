//! The paper's evaluation protocol (its section 3.2 and Tables 3-5) on a labelled set:
//! each image rescaled so its shorter side is a test scale Q, then classified by
//! - **center crop**: one crop of the network's input from the middle (the common
//!   single-crop test, for comparison);
//! - **dense**: the FC layers as convolutions over the whole rescaled image, the class
//!   score map averaged over positions, the softmax of that averaged with the mirrored
//!   image's;
//! - **multi-crop**: a `grid` x `grid` of crops spread edge to edge, each mirrored too
//!   (the paper's 5x5x2 = 50 per scale), their softmax posteriors averaged;
//! - **dense + multi-crop**: the two posteriors averaged;
//!
//! at a single scale or averaged over several (multi-scale). Every combination's top-1 and
//! top-5 error is one [`Row`]. The views of many images go through the GPU together.
//!
//! Images come stored at the largest Q (or larger, [`Dataset`] of one size) and are
//! rescaled from there (`io::scale`).

use crate::error::{Error, Result};
use crate::graph::{Network, PROB};
use crate::io::datasets::Dataset;
use crate::io::scale;
use crate::model::{Model, Tensor};
use std::collections::BTreeMap;
use std::time::Instant;

/// How one scale's posterior of an image is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum View {
    Center,
    Dense,
    Crops,
}

impl View {
    pub fn name(self) -> &'static str {
        match self {
            View::Center => "center crop",
            View::Dense => "dense",
            View::Crops => "multi-crop",
        }
    }
}

/// A row's method: one view, or dense and multi-crop combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Center,
    Dense,
    MultiCrop,
    DenseMultiCrop,
}

impl Method {
    pub const ALL: [Method; 4] = [
        Method::Center,
        Method::Dense,
        Method::MultiCrop,
        Method::DenseMultiCrop,
    ];

    /// The option's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Method::Center => "center",
            Method::Dense => "dense",
            Method::MultiCrop => "multi-crop",
            Method::DenseMultiCrop => "dense+multi-crop",
        }
    }

    pub fn parse(s: &str) -> Result<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s.trim())
            .ok_or_else(|| Error::InvalidOption {
                option: "--methods".into(),
                message: format!("'{s}': use {}", Method::ALL.map(Method::name).join(", ")),
            })
    }

    /// The views whose posteriors this method averages.
    pub fn views(self) -> &'static [View] {
        match self {
            Method::Center => &[View::Center],
            Method::Dense => &[View::Dense],
            Method::MultiCrop => &[View::Crops],
            Method::DenseMultiCrop => &[View::Dense, View::Crops],
        }
    }

    pub fn uses_dense(self) -> bool {
        self.views().contains(&View::Dense)
    }
}

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct Options {
    /// The test scales of the multi-scale rows.
    pub scales: Vec<usize>,
    /// The scale of the single-scale rows (one of `scales`).
    pub single: usize,
    /// Crops per axis of multi-crop (the paper's 5).
    pub grid: usize,
    /// Views per forward pass (crops, or whole images and their mirrors for dense).
    pub batch: usize,
    pub methods: Vec<Method>,
}

/// The most crops per axis: 10x10x2 = 200 crops per image and scale.
pub const MAX_GRID: usize = 10;

/// One line of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub method: Method,
    pub scales: Vec<usize>,
    pub top1_error: f64,
    pub top5_error: f64,
    /// The wall time of the views this row needed (their preparation and forwards).
    pub seconds: f64,
    pub images_per_second: f64,
}

/// The rows, and what they were computed from.
#[derive(Clone, Debug)]
pub struct Report {
    pub images: usize,
    /// How many classes top-5 counts (fewer where the model has fewer).
    pub top_k: usize,
    pub rows: Vec<Row>,
    /// Per view and scale: the posteriors of every image, [images, classes].
    pub posteriors: BTreeMap<(View, usize), Vec<f32>>,
    pub seconds: BTreeMap<(View, usize), f64>,
}

impl Options {
    fn validate(&self, data: &Dataset, input: (usize, usize)) -> Result<()> {
        let bad = |option: &str, message: String| Error::InvalidOption {
            option: option.into(),
            message,
        };
        let (_, hs, ws) = data.dims;
        let side = input.0.max(input.1);
        if self.scales.is_empty() {
            return Err(bad("--scales", "no test scale given".into()));
        }
        if let Some(q) = self.scales.iter().find(|q| **q < side || **q > hs.min(ws)) {
            return Err(bad(
                "--scales",
                format!(
                    "{q}: a test scale must be at least the input side {side} and at most the \
                     side the images are stored at, {}",
                    hs.min(ws)
                ),
            ));
        }
        if !self.scales.contains(&self.single) {
            return Err(bad(
                "--single",
                format!("{} is not one of the scales {:?}", self.single, self.scales),
            ));
        }
        if !(1..=MAX_GRID).contains(&self.grid) {
            return Err(bad(
                "--grid",
                format!("{} must be from 1 to {MAX_GRID}", self.grid),
            ));
        }
        if self.batch == 0 || self.methods.is_empty() {
            return Err(bad(
                "--batch-size",
                "a batch and at least one method are needed".into(),
            ));
        }
        Ok(())
    }

    /// The scale sets of the rows: the single scale, then all of them where they differ.
    fn scale_sets(&self) -> Vec<Vec<usize>> {
        let mut sets = vec![vec![self.single]];
        if self.scales != [self.single] {
            sets.push(self.scales.clone());
        }
        sets
    }
}

/// Evaluates `net` on `data` (labels below the model's classes) as `o` says; `progress`
/// hears (what runs, images done, images in this pass) after every forward.
pub fn evaluate(
    net: &mut Network<'_>,
    data: &Dataset,
    o: &Options,
    mut progress: impl FnMut(&str, usize, usize),
) -> Result<Report> {
    let model = net.model().clone();
    let [c, h, w] = model.input_dims();
    o.validate(data, (h, w))?;
    let classes = model.classes();
    if data.dims.0 != c || data.is_empty() || data.labels.iter().any(|l| *l as usize >= classes) {
        return Err(Error::Shape(format!(
            "{} images of {} channels, labels below {}: {} takes {c} channels and {classes} \
             classes",
            data.len(),
            data.dims.0,
            data.classes,
            model.name()
        )));
    }
    let n = data.len();
    crate::io::check_host_bytes(
        (n as u64)
            .checked_mul(classes as u64 * 4)
            .and_then(|b| b.checked_mul((o.scales.len() * 3) as u64)),
        "the posteriors",
    )?;
    let mut needed: Vec<(View, usize)> = Vec::new();
    for m in &o.methods {
        for v in m.views() {
            for q in &o.scales {
                if !needed.contains(&(*v, *q)) {
                    needed.push((*v, *q));
                }
            }
        }
    }
    // Dense evaluation's limits, before any work.
    for &(view, q) in &needed {
        if view == View::Dense {
            dense_fits(&model, data.dims, q).map_err(|e| Error::InvalidOption {
                option: "--scales".into(),
                message: format!("dense evaluation at scale {q}: {e}"),
            })?;
        }
    }
    let mut posteriors = BTreeMap::new();
    let mut seconds = BTreeMap::new();
    for &(view, q) in &needed {
        let label = format!("{} at {q}", view.name());
        let mut pass = Pass {
            label: &label,
            batch: o.batch,
            seconds: 0.0,
            progress: &mut progress,
        };
        let p = match view {
            View::Center => crops(net, data, q, 1, 1, &mut pass),
            View::Crops => crops(net, data, q, o.grid, 2, &mut pass),
            View::Dense => dense(net, data, q, &mut pass),
        };
        let secs = pass.seconds;
        // Back to the input size whatever happened (dense changes it).
        net.set_input_size(h, w)?;
        posteriors.insert((view, q), p?);
        seconds.insert((view, q), secs);
    }
    let top_k = classes.min(5);
    let mut rows = Vec::new();
    for m in &o.methods {
        for set in o.scale_sets() {
            let mut mean = vec![0f64; n * classes];
            let parts: Vec<(View, usize)> = m
                .views()
                .iter()
                .flat_map(|v| set.iter().map(move |q| (*v, *q)))
                .collect();
            for key in &parts {
                for (a, p) in mean.iter_mut().zip(&posteriors[key]) {
                    *a += *p as f64 / parts.len() as f64;
                }
            }
            let (mut top1, mut top5) = (0usize, 0usize);
            for (i, row) in mean.chunks(classes).enumerate() {
                let label = data.labels[i] as usize;
                // The rank of the true class: how many classes score above it (ties go
                // to the lower index, as a sort by score then index would put them).
                let above = row
                    .iter()
                    .enumerate()
                    .filter(|(k, s)| **s > row[label] || (**s == row[label] && *k < label))
                    .count();
                top1 += (above >= 1) as usize;
                top5 += (above >= top_k) as usize;
            }
            let secs: f64 = parts.iter().map(|k| seconds[k]).sum();
            rows.push(Row {
                method: *m,
                scales: set.clone(),
                top1_error: top1 as f64 / n as f64,
                top5_error: top5 as f64 / n as f64,
                seconds: secs,
                images_per_second: n as f64 / secs,
            });
        }
    }
    Ok(Report {
        images: n,
        top_k,
        rows,
        posteriors,
        seconds,
    })
}

/// Whether dense evaluation can run `model` on images of `dims` rescaled to scale `q`: the
/// feature map there has to cover the average pool's output, the window fc6 becomes.
pub fn dense_fits(model: &Model, dims: (usize, usize, usize), q: usize) -> Result<()> {
    let (rh, rw) = scale::rescaled(dims.1, dims.2, q);
    let m = model.with_input(model.config().in_channels, rh, rw)?;
    crate::graph::Graph::build_dense(&m).map(|_| ())
}

/// One (view, scale) pass over the data: its progress label, views per forward, and its
/// time so far.
struct Pass<'a, P: FnMut(&str, usize, usize)> {
    label: &'a str,
    batch: usize,
    seconds: f64,
    progress: &'a mut P,
}

impl<P: FnMut(&str, usize, usize)> Pass<'_, P> {
    /// Runs `forward` on a batch prepared since `since`, timing both. The pass's first
    /// forward runs once more, untimed, before: it builds the plan and compiles what the
    /// new input size needs, which is no part of the throughput.
    fn forward(
        &mut self,
        since: Instant,
        first: bool,
        mut forward: impl FnMut() -> Result<Tensor>,
    ) -> Result<Tensor> {
        let prepared = since.elapsed().as_secs_f64();
        if first {
            forward()?;
        }
        let t = Instant::now();
        let out = forward()?;
        self.seconds += prepared + t.elapsed().as_secs_f64();
        finite(&out.data, self.label)?;
        Ok(out)
    }
}

/// Posteriors from crops of the input size at scale `q`: a `grid` x `grid` spread, each
/// crop also mirrored when `flips` is 2; softmax posteriors averaged per image.
fn crops(
    net: &mut Network<'_>,
    data: &Dataset,
    q: usize,
    grid: usize,
    flips: usize,
    pass: &mut Pass<'_, impl FnMut(&str, usize, usize)>,
) -> Result<Vec<f32>> {
    let [c, h, w] = net.model().input_dims();
    let classes = net.model().classes();
    let (rh, rw) = scale::rescaled(data.dims.1, data.dims.2, q);
    let (tops, lefts) = (
        scale::grid_offsets(rh, h, grid),
        scale::grid_offsets(rw, w, grid),
    );
    let per_image = grid * grid * flips;
    let images_per_forward = (pass.batch / per_image).max(1);
    let mut out = Vec::with_capacity(data.len() * classes);
    for start in (0..data.len()).step_by(images_per_forward) {
        let t = Instant::now();
        let end = (start + images_per_forward).min(data.len());
        let mut views = Vec::with_capacity((end - start) * per_image * c * h * w);
        for i in start..end {
            // The image rescaled once; the crops cut from it.
            let whole = scale::rescale_crop(data.image(i), data.dims, (rh, rw), (0, 0, rh, rw));
            for &top in &tops {
                for &left in &lefts {
                    let mut crop = Vec::with_capacity(c * h * w);
                    for k in 0..c {
                        for y in top..top + h {
                            crop.extend_from_slice(&whole[(k * rh + y) * rw + left..][..w]);
                        }
                    }
                    if flips == 2 {
                        let mut m = crop.clone();
                        scale::mirror(&mut m, w);
                        views.extend(crop);
                        views.extend(m);
                    } else {
                        views.extend(crop);
                    }
                }
            }
        }
        let nv = (end - start) * per_image;
        let x = Tensor::new(vec![nv, c, h, w], views)?;
        let p = pass.forward(t, start == 0, || net.forward_features(&x, PROB))?;
        for rows in p.data.chunks(per_image * classes) {
            let mut mean = vec![0f64; classes];
            for row in rows.chunks(classes) {
                for (m, v) in mean.iter_mut().zip(row) {
                    *m += *v as f64 / per_image as f64;
                }
            }
            out.extend(mean.into_iter().map(|v| v as f32));
        }
        (pass.progress)(pass.label, end, data.len());
    }
    Ok(out)
}

/// Dense posteriors at scale `q`: each image rescaled whole and mirrored, the network run
/// fully convolutionally over both (`infer::dense_posteriors` pools and averages).
fn dense(
    net: &mut Network<'_>,
    data: &Dataset,
    q: usize,
    pass: &mut Pass<'_, impl FnMut(&str, usize, usize)>,
) -> Result<Vec<f32>> {
    let c = data.dims.0;
    let classes = net.model().classes();
    let (rh, rw) = scale::rescaled(data.dims.1, data.dims.2, q);
    net.set_input_size(rh, rw)?;
    let images_per_forward = (pass.batch / 2).max(1);
    let mut out = Vec::with_capacity(data.len() * classes);
    for start in (0..data.len()).step_by(images_per_forward) {
        let t = Instant::now();
        let end = (start + images_per_forward).min(data.len());
        let mut views = Vec::with_capacity((end - start) * 2 * c * rh * rw);
        for i in start..end {
            let whole = scale::rescale_crop(data.image(i), data.dims, (rh, rw), (0, 0, rh, rw));
            let mut m = whole.clone();
            scale::mirror(&mut m, rw);
            views.extend(whole);
            views.extend(m);
        }
        let nv = (end - start) * 2;
        let x = Tensor::new(vec![nv, c, rh, rw], views)?;
        let scores = pass.forward(t, start == 0, || net.forward_dense(&x))?;
        let positions = scores.shape[1];
        for two in scores.data.chunks(2 * positions * classes) {
            let t = Tensor::new(vec![2, positions, classes], two.to_vec())?;
            out.extend(crate::infer::dense_posteriors(&t));
        }
        (pass.progress)(pass.label, end, data.len());
    }
    Ok(out)
}

fn finite(v: &[f32], what: &str) -> Result<()> {
    match v.iter().find(|x| !x.is_finite()) {
        Some(x) => Err(Error::NonFinite(format!(
            "{what}: the forward gave {x}: the weights overflow f32 arithmetic"
        ))),
        None => Ok(()),
    }
}
