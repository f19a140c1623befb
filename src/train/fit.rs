//! The training loop: epochs over a shuffled training set, evaluation on a held-out set after
//! each epoch, the learning-rate schedule, checkpoints and exact resumption, and a metrics
//! CSV.

use super::{StepStats, TrainOptions, Trainer};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::graph::Network;
use crate::io::datasets::Dataset;
use crate::io::labels::top_k;
use crate::model::{Model, Tensor, Weights};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// How the learning rate changes between epochs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    Constant,
    /// Multiply by `factor` every `every` epochs.
    Step {
        every: usize,
        factor: f32,
    },
    /// The paper's: divide by 10 when the held-out accuracy has not improved for
    /// `patience` epochs.
    Plateau {
        patience: usize,
    },
}

impl Schedule {
    /// `constant`, `step:EVERY:FACTOR` or `plateau[:PATIENCE]`.
    pub fn parse(s: &str) -> Result<Schedule> {
        let bad = || Error::InvalidOption {
            option: "--schedule".into(),
            message: format!("'{s}': use constant, step:EVERY:FACTOR or plateau[:PATIENCE]"),
        };
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            ["constant"] => Ok(Schedule::Constant),
            ["plateau"] => Ok(Schedule::Plateau { patience: 1 }),
            ["plateau", p] => Ok(Schedule::Plateau {
                patience: p.parse().map_err(|_| bad())?,
            }),
            ["step", e, f] => Ok(Schedule::Step {
                every: e.parse().ok().filter(|e| *e > 0).ok_or_else(bad)?,
                factor: f.parse().map_err(|_| bad())?,
            }),
            _ => Err(bad()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct FitOptions {
    pub epochs: usize,
    pub lr: f32,
    pub schedule: Schedule,
    pub train: TrainOptions,
    /// Where checkpoints (`checkpoint.safetensors`) and `metrics.csv` go.
    pub out: Option<PathBuf>,
    /// Random horizontal flips and crops from a `augment_pad`-pixel zero padding (image
    /// data; not digits).
    pub augment: bool,
    pub augment_pad: usize,
}

/// One epoch's record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpochStats {
    pub epoch: usize,
    pub lr: f32,
    pub loss: f64,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    pub images_per_second: f64,
}

/// Accuracy of a network on `data` (inference executor, batches of 250).
pub fn evaluate(net: &mut Network<'_>, data: &Dataset) -> Result<f64> {
    let (c, h, w) = data.dims;
    let mut correct = 0;
    let chunk = 250;
    for start in (0..data.len()).step_by(chunk) {
        let end = (start + chunk).min(data.len());
        let part = data.slice(start..end);
        let x = Tensor::new(vec![end - start, c, h, w], part.images)?;
        let logits = net.forward(&x)?;
        for (i, &label) in part.labels.iter().enumerate() {
            if top_k(logits.row(i), 1)[0].0 == label as usize {
                correct += 1;
            }
        }
    }
    Ok(correct as f64 / data.len() as f64)
}

/// The checkpoint: weights, momentum (as `momentum.NAME`), and in the metadata the epoch,
/// step, learning rate and best accuracy so far.
pub fn save_checkpoint(
    path: &Path,
    weights: &Weights,
    momentum: &Weights,
    meta: &HashMap<String, String>,
) -> Result<()> {
    let names: Vec<String> = momentum
        .iter()
        .map(|(n, _)| format!("momentum.{n}"))
        .collect();
    let mut list: Vec<(&str, &Tensor)> = weights.iter().map(|(n, t)| (n.as_str(), t)).collect();
    list.extend(
        names
            .iter()
            .zip(momentum.iter())
            .map(|(n, (_, t))| (n.as_str(), t)),
    );
    crate::io::save_safetensors(path, &list, Some(meta.clone()))
}

fn read_meta(path: &Path) -> Result<HashMap<String, String>> {
    let bytes =
        std::fs::read(path).map_err(|e| crate::io::file_err(path, format!("cannot read: {e}")))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| crate::io::file_err(path, format!("not a valid safetensors file: {e}")))?;
    Ok(meta.metadata().clone().unwrap_or_default())
}

/// Where a run stands between epochs: what a checkpoint's metadata records.
#[derive(Clone, Copy, Debug)]
struct RunState {
    /// Epochs done.
    epoch: usize,
    steps: u64,
    lr: f32,
    best: f64,
    since_best: usize,
}

impl RunState {
    /// The state, weights and momentum a checkpoint holds.
    fn resume(p: &Path) -> Result<(RunState, Weights, Weights)> {
        let all = crate::io::read_safetensors(p)?;
        let meta = read_meta(p)?;
        let num = |k: &str| -> Result<f64> {
            meta.get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| crate::io::file_err(p, format!("checkpoint metadata lacks {k}")))
        };
        let state = RunState {
            epoch: num("epoch")? as usize,
            steps: num("step")? as u64,
            lr: num("lr")? as f32,
            best: num("best_accuracy")?,
            since_best: num("epochs_since_best")? as usize,
        };
        let (mut wts, mut mom) = (Weights::new(), Weights::new());
        for (n, t) in all.iter() {
            match n.strip_prefix("momentum.") {
                Some(m) => mom.insert(m, t.clone()),
                None => wts.insert(n, t.clone()),
            }
        }
        Ok((state, wts, mom))
    }

    /// After an epoch that reached held-out accuracy `acc`: the best so far and the
    /// learning rate the schedule gives the next epoch.
    fn after_epoch(&mut self, schedule: Schedule, acc: f64) {
        self.epoch += 1;
        if acc > self.best {
            self.best = acc;
            self.since_best = 0;
        } else {
            self.since_best += 1;
        }
        self.lr = match schedule {
            Schedule::Constant => self.lr,
            Schedule::Step { every, factor } if self.epoch.is_multiple_of(every) => {
                self.lr * factor
            }
            Schedule::Step { .. } => self.lr,
            Schedule::Plateau { patience } if self.since_best >= patience => {
                self.since_best = 0;
                self.lr / 10.0
            }
            Schedule::Plateau { .. } => self.lr,
        };
    }

    fn metadata(&self, model: &Model) -> HashMap<String, String> {
        [
            ("epoch", self.epoch.to_string()),
            ("step", self.steps.to_string()),
            ("lr", self.lr.to_string()),
            ("best_accuracy", self.best.to_string()),
            ("epochs_since_best", self.since_best.to_string()),
            ("model", model.name().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// Trains `model` from `weights` (or from the checkpoint `resume`), calling `progress`
/// after every step with (epoch, step in epoch, steps per epoch, the step's stats) and
/// `on_epoch` after every evaluation. Returns the final weights and the epoch records.
#[allow(clippy::too_many_arguments)]
pub fn fit(
    gpu: &Gpu,
    model: &Model,
    weights: &Weights,
    train: &Dataset,
    test: &Dataset,
    o: &FitOptions,
    resume: Option<&Path>,
    mut progress: impl FnMut(usize, usize, usize, &StepStats),
    mut on_epoch: impl FnMut(&EpochStats),
) -> Result<(Weights, Vec<EpochStats>)> {
    let per_step = o.train.batch * o.train.accumulate;
    if train.len() < per_step {
        return Err(Error::InvalidOption {
            option: "batch size".into(),
            message: format!(
                "{} training images cannot fill a step of {per_step}",
                train.len()
            ),
        });
    }
    let [c, h, w] = model.input_dims();
    if train.dims != (c, h, w) {
        return Err(Error::Shape(format!(
            "the data holds {:?} images, {} takes {c}x{h}x{w}",
            train.dims,
            model.name()
        )));
    }
    let mut state = RunState {
        epoch: 0,
        steps: 0,
        lr: o.lr,
        best: 0.0,
        since_best: 0,
    };
    let mut history = Vec::new();
    let mut trainer = match resume {
        Some(p) => {
            let (s, w0, momentum) = RunState::resume(p)?;
            state = s;
            let mut t = Trainer::new(gpu, model, &w0, o.train)?;
            t.set_momentum(&momentum, state.steps)?;
            t
        }
        None => Trainer::new(gpu, model, weights, o.train)?,
    };
    let steps_per_epoch = train.len() / per_step;
    while state.epoch < o.epochs {
        let epoch = state.epoch;
        let t0 = std::time::Instant::now();
        let (loss, correct, seen) = run_epoch(&mut trainer, train, o, epoch, state.lr, |s, st| {
            progress(epoch + 1, s + 1, steps_per_epoch, st)
        })?;
        let secs = t0.elapsed().as_secs_f64();
        let weights = trainer.weights()?;
        let acc = evaluate(&mut Network::new(gpu, model, &weights)?, test)?;
        let rec = EpochStats {
            epoch: epoch + 1,
            lr: state.lr,
            loss: loss / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            test_accuracy: acc,
            images_per_second: seen as f64 / secs,
        };
        on_epoch(&rec);
        history.push(rec);
        state.after_epoch(o.schedule, acc);
        state.steps = trainer.steps();
        if let Some(dir) = &o.out {
            std::fs::create_dir_all(dir)
                .map_err(|e| crate::io::file_err(dir, format!("cannot create: {e}")))?;
            save_checkpoint(
                &dir.join("checkpoint.safetensors"),
                &weights,
                &trainer.momentum()?,
                &state.metadata(model),
            )?;
            append_metrics(&dir.join("metrics.csv"), &rec)?;
        }
    }
    Ok((trainer.weights()?, history))
}

/// One epoch's steps in a shuffled order (seeded by the seed and the epoch, so a resumed
/// run continues the same sequence); returns the summed loss, the correct count and the
/// images seen.
fn run_epoch(
    trainer: &mut Trainer,
    train: &Dataset,
    o: &FitOptions,
    epoch: usize,
    lr: f32,
    mut progress: impl FnMut(usize, &StepStats),
) -> Result<(f64, usize, usize)> {
    let per_step = o.train.batch * o.train.accumulate;
    let steps_per_epoch = train.len() / per_step;
    let (c, h, w) = train.dims;
    let img = train.image_len();
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut rng =
        rand_chacha::ChaCha8Rng::seed_from_u64(o.train.seed ^ ((epoch as u64 + 1) * 0x9E37));
    order.shuffle(&mut rng);
    let (mut loss, mut correct, mut seen) = (0.0, 0, 0);
    for s in 0..steps_per_epoch {
        let idx = &order[s * per_step..(s + 1) * per_step];
        let mut data = Vec::with_capacity(per_step * img);
        // Seeded by (seed, epoch, step): a resumed run draws the same augmentations.
        let mut aug = rand_chacha::ChaCha8Rng::seed_from_u64(
            o.train.seed ^ ((epoch * steps_per_epoch + s) as u64).wrapping_mul(0x85EB_CA6B),
        );
        for &i in idx {
            let start = data.len();
            data.extend_from_slice(train.image(i));
            if o.augment {
                let pad = o.augment_pad;
                crate::io::datasets::augment(&mut data[start..], train.dims, pad, &mut aug);
            }
        }
        let labels: Vec<u32> = idx.iter().map(|&i| train.labels[i]).collect();
        let x = Tensor::new(vec![per_step, c, h, w], data)?;
        let st = trainer.step(&x, &labels, lr)?;
        loss += st.loss * st.images as f64;
        correct += st.correct;
        seen += st.images;
        progress(s, &st);
    }
    Ok((loss, correct, seen))
}

fn append_metrics(path: &Path, r: &EpochStats) -> Result<()> {
    use std::io::Write;
    let new = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| crate::io::file_err(path, format!("cannot write: {e}")))?;
    let mut text = String::new();
    if new {
        text.push_str("epoch,lr,loss,train_accuracy,test_accuracy,images_per_second\n");
    }
    text.push_str(&format!(
        "{},{},{:.6},{:.6},{:.6},{:.2}\n",
        r.epoch, r.lr, r.loss, r.train_accuracy, r.test_accuracy, r.images_per_second
    ));
    f.write_all(text.as_bytes())
        .map_err(|e| crate::io::file_err(path, format!("cannot write: {e}")))
}

/// Loss and accuracies per epoch from a `metrics.csv`, drawn as an SVG (loss above,
/// training and held-out accuracy below).
pub fn plot_metrics(csv: &Path, svg: &Path) -> Result<()> {
    use plotters::prelude::*;
    let text = std::fs::read_to_string(csv)
        .map_err(|e| crate::io::file_err(csv, format!("cannot read: {e}")))?;
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').map(|v| v.parse().ok()).collect())
        .collect();
    if rows.is_empty() {
        return Err(crate::io::file_err(csv, "no epochs to plot"));
    }
    let err = |e: &dyn std::fmt::Display| crate::io::file_err(svg, format!("cannot plot: {e}"));
    let last = rows.len() as f64 + 0.5;
    let max_loss = rows.iter().map(|r| r[2]).fold(0.0, f64::max) * 1.1 + 1e-9;
    let root = SVGBackend::new(svg, (800, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(300);
    let mut c = ChartBuilder::on(&top)
        .caption("training loss per epoch", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.5..last, 0.0..max_loss)
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc("epoch")
        .draw()
        .map_err(|e| err(&e))?;
    c.draw_series(LineSeries::new(
        rows.iter().map(|r| (r[0], r[2])),
        RED.stroke_width(2),
    ))
    .map_err(|e| err(&e))?;
    let mut c = ChartBuilder::on(&bottom)
        .caption(
            "accuracy: training (blue), held-out (green)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.5..last, 0.0..1.0)
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc("epoch")
        .draw()
        .map_err(|e| err(&e))?;
    c.draw_series(LineSeries::new(
        rows.iter().map(|r| (r[0], r[3])),
        BLUE.stroke_width(2),
    ))
    .map_err(|e| err(&e))?;
    c.draw_series(LineSeries::new(
        rows.iter().map(|r| (r[0], r[4])),
        GREEN.stroke_width(2),
    ))
    .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
