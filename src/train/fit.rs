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
    /// `patience` epochs, at most [`PLATEAU_DROPS`] times.
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
                patience: p.parse().ok().filter(|p| *p > 0).ok_or_else(bad)?,
            }),
            ["step", e, f] => {
                let s = Schedule::Step {
                    every: e.parse().ok().filter(|e| *e > 0).ok_or_else(bad)?,
                    factor: f.parse().map_err(|_| bad())?,
                };
                s.validate()?;
                Ok(s)
            }
            _ => Err(bad()),
        }
    }

    /// A step factor lowers the rate: finite, above 0, at most 1; intervals are at least 1.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Error::InvalidOption {
            option: "--schedule".into(),
            message: m,
        };
        match *self {
            Schedule::Step { every: 0, .. } | Schedule::Plateau { patience: 0 } => {
                Err(bad("intervals and patience are at least 1 epoch".into()))
            }
            Schedule::Step { factor, .. } if !(factor > 0.0 && factor <= 1.0) => Err(bad(format!(
                "step factor {factor}: a schedule lowers the rate, 0 < FACTOR <= 1"
            ))),
            _ => Ok(()),
        }
    }
}

/// `lr` x `factor` to 6 significant digits: repeated f32 products leave 0.05 / 10 / 10 at
/// 0.00049999997, which metrics.csv and the progress line would show as noise.
fn scaled_rate(lr: f32, factor: f64) -> f32 {
    let x = lr as f64 * factor;
    if !(x.is_finite() && x > 0.0) {
        return x as f32;
    }
    let scale = 10f64.powi(5 - x.log10().floor() as i32);
    ((x * scale).round() / scale) as f32
}

/// The most times the plateau schedule divides the rate by 10: the paper's three (its rate
/// went from 1e-2 to 1e-5 over training). Past them the rate stays, where uncapped a small
/// run's noisy accuracy kept dividing it, to 5e-14 in one run of 30 epochs.
pub const PLATEAU_DROPS: usize = 3;

/// The largest learning rate taken: far above any that trains these networks (0.01 to
/// 0.1), low enough to refuse a typo such as 1e9.
pub const MAX_LR: f32 = 100.0;

/// The most epochs a run may ask for.
pub const MAX_EPOCHS: usize = 1_000_000;

/// A mean loss above this (in nats; chance over 1000 classes is 6.9) is divergence, not
/// learning: the step's logits are hundreds of units off and the next steps overflow.
pub const DIVERGED_LOSS: f64 = 1000.0;

/// Checks a learning rate: finite, above 0, at most [`MAX_LR`].
pub fn check_lr(lr: f32, option: &str) -> Result<()> {
    if lr.is_finite() && lr > 0.0 && lr <= MAX_LR {
        Ok(())
    } else {
        Err(Error::InvalidOption {
            option: option.into(),
            message: format!("learning rate {lr} must be above 0 and at most {MAX_LR}"),
        })
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
    /// With `augment`: torchvision's random resized crop and flip instead of the padded
    /// shift (`io::datasets::random_resized_crop`), the ImageNet recipe for fine-tuning at
    /// 224.
    pub resized_crop: bool,
    /// The paper's scale jittering instead of `augment` (the training images stored at
    /// the largest scale or more; see `io::scale::Jitter`).
    pub scale: Option<crate::io::scale::Jitter>,
    /// On resuming, this rate replaces the one the checkpoint recorded (to continue a run
    /// that diverged from its last good checkpoint at a lower rate).
    pub lr_on_resume: Option<f32>,
    /// The model card every checkpoint carries (architecture, preprocessing, class names).
    pub card: Option<crate::model::Card>,
}

impl FitOptions {
    /// Refuses rates, schedules and epoch counts that make no sense, before any work.
    pub fn validate(&self) -> Result<()> {
        check_lr(self.lr, "--lr")?;
        if let Some(lr) = self.lr_on_resume {
            check_lr(lr, "--lr")?;
        }
        self.schedule.validate()?;
        if self.epochs == 0 || self.epochs > MAX_EPOCHS {
            return Err(Error::InvalidOption {
                option: "--epochs".into(),
                message: format!("{} must be from 1 to {MAX_EPOCHS}", self.epochs),
            });
        }
        Ok(())
    }
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

/// Where a run stands between epochs: what a checkpoint's metadata records.
#[derive(Clone, Copy, Debug)]
struct RunState {
    /// Epochs done.
    epoch: usize,
    steps: u64,
    lr: f32,
    best: f64,
    since_best: usize,
    /// Times the plateau schedule has divided the rate (at most [`PLATEAU_DROPS`]).
    drops: usize,
    /// Loss-scaled (f16) training's scale and clean steps since it changed.
    loss_scale: Option<(f32, u32)>,
}

impl RunState {
    /// The state, weights, momentum and epoch records a checkpoint holds, its metadata
    /// checked (integral counts in range, a finite rate, an accuracy in [0, 1], the model it
    /// was written for) with the file named.
    fn resume(p: &Path, model: &Model) -> Result<(RunState, Weights, Weights, Vec<EpochStats>)> {
        // The header alone; the tensors are read once, below.
        let meta = crate::io::weights::read_metadata(p)?;
        let num = |k: &str, lo: f64, hi: f64, whole: bool| -> Result<f64> {
            let v = meta
                .get(k)
                .ok_or_else(|| crate::io::file_err(p, format!("checkpoint metadata lacks {k}")))?;
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && (lo..=hi).contains(x) && (!whole || x.fract() == 0.0))
                .ok_or_else(|| {
                    crate::io::file_err(
                        p,
                        format!("checkpoint metadata {k}={v} is not a number in {lo}..={hi}"),
                    )
                })
        };
        let state = RunState {
            epoch: num("epoch", 0.0, MAX_EPOCHS as f64, true)? as usize,
            steps: num("step", 0.0, 2f64.powi(53), true)? as u64,
            lr: num("lr", f32::MIN_POSITIVE as f64, MAX_LR as f64, false)? as f32,
            best: num("best_accuracy", 0.0, 1.0, false)?,
            since_best: num("epochs_since_best", 0.0, MAX_EPOCHS as f64, true)? as usize,
            // Checkpoints from before the cap have none: count from there.
            drops: match meta.contains_key("lr_drops") {
                true => num("lr_drops", 0.0, PLATEAU_DROPS as f64, true)? as usize,
                false => 0,
            },
            loss_scale: match meta.contains_key("loss_scale") {
                true => Some((
                    num("loss_scale", 2f64.powi(-24), f32::MAX as f64, false)? as f32,
                    num("loss_scale_steps", 0.0, u32::MAX as f64, true)? as u32,
                )),
                false => None,
            },
        };
        if let Some(m) = meta.get("model").filter(|m| *m != model.name()) {
            return Err(crate::io::file_err(
                p,
                format!("is a checkpoint of {m}, not of {}", model.name()),
            ));
        }
        // The card records the whole architecture (every custom model is named "custom").
        let card =
            crate::model::Card::from_metadata(&meta).map_err(|e| crate::io::file_err(p, e))?;
        if let Some(c) = card {
            let (a, b) = (&c.config, model.config());
            let layers = |c: &crate::model::Config| {
                c.features
                    .iter()
                    .map(|f| match f {
                        crate::model::Feature::Conv { out, k: 1 } => format!("{out}:1"),
                        crate::model::Feature::Conv { out, .. } => out.to_string(),
                        crate::model::Feature::Lrn => "L".into(),
                        crate::model::Feature::Pool => "M".into(),
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let differs = [
                ("layers", layers(a), layers(b)),
                (
                    "batch norm",
                    a.batch_norm.to_string(),
                    b.batch_norm.to_string(),
                ),
                (
                    "input channels",
                    a.in_channels.to_string(),
                    b.in_channels.to_string(),
                ),
                (
                    "input size",
                    format!("{:?}", a.input),
                    format!("{:?}", b.input),
                ),
                (
                    "average pool",
                    format!("{:?}", a.avgpool),
                    format!("{:?}", b.avgpool),
                ),
                (
                    "hidden widths",
                    format!("{:?}", a.hidden),
                    format!("{:?}", b.hidden),
                ),
                ("classes", a.classes.to_string(), b.classes.to_string()),
                ("LRN", format!("{:?}", a.lrn), format!("{:?}", b.lrn)),
            ];
            if let Some((what, theirs, ours)) = differs.iter().find(|d| d.1 != d.2) {
                return Err(crate::io::file_err(
                    p,
                    format!(
                        "is a checkpoint of another model than this run's: its {what} are \
                         {theirs}, this run's {ours}"
                    ),
                ));
            }
        }
        let records = match meta.get("metrics") {
            Some(text) => parse_metrics(text).map_err(|e| crate::io::file_err(p, e))?,
            None => Vec::new(),
        };
        let all = crate::io::read_safetensors(p)?;
        let (mut wts, mut mom) = (Weights::new(), Weights::new());
        for (n, t) in all.iter() {
            // A NaN here would surface a step later, blamed on the weight it reaches.
            if let Some(i) = t.data.iter().position(|v| !v.is_finite()) {
                return Err(crate::io::file_err(
                    p,
                    format!("tensor '{n}' holds {} at element {i}", t.data[i]),
                ));
            }
            match n.strip_prefix("momentum.") {
                Some(m) => mom.insert(m, t.clone()),
                None => wts.insert(n, t.clone()),
            }
        }
        Ok((state, wts, mom, records))
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
                scaled_rate(self.lr, factor as f64)
            }
            Schedule::Step { .. } => self.lr,
            Schedule::Plateau { patience }
                if self.since_best >= patience && self.drops < PLATEAU_DROPS =>
            {
                self.since_best = 0;
                self.drops += 1;
                scaled_rate(self.lr, 0.1)
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
            ("lr_drops", self.drops.to_string()),
            ("model", model.name().to_string()),
        ]
        .into_iter()
        .chain(self.loss_scale.into_iter().flat_map(|(s, g)| {
            [
                ("loss_scale", s.to_string()),
                ("loss_scale_steps", g.to_string()),
            ]
        }))
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// Where a run starts: from weights, or from a checkpoint `fit` wrote (its weights,
/// momentum, step count, loss scale and records).
#[derive(Clone, Copy, Debug)]
pub enum Start<'a> {
    From(&'a Weights),
    Resume(&'a Path),
}

/// Trains `model` from `start` on `(train, test)` (the held-out set evaluated after each
/// epoch), calling `progress` after every step with (epoch, step in epoch, steps per
/// epoch, the step's stats) and `on_epoch` after every evaluation. Returns the final
/// weights and the epoch records.
pub fn fit(
    gpu: &Gpu,
    model: &Model,
    start: Start,
    (train, test): (&Dataset, &Dataset),
    o: &FitOptions,
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
    check_data(model, train, o)?;
    o.validate()?;
    let _lock = match &o.out {
        Some(dir) => Some(prepare_out(dir, matches!(start, Start::Resume(_)))?),
        None => None,
    };
    let mut state = RunState {
        epoch: 0,
        steps: 0,
        lr: o.lr,
        best: 0.0,
        since_best: 0,
        drops: 0,
        loss_scale: None,
    };
    // Every epoch's record, earlier runs' included: what metrics.csv holds.
    let mut records = Vec::new();
    let mut history = Vec::new();
    let mut trainer = match start {
        Start::Resume(p) => {
            let (s, t, earlier) = resumed(gpu, model, o, p)?;
            state = s;
            records = earlier;
            t
        }
        Start::From(weights) => Trainer::new(gpu, model, weights, o.train)?,
    };
    let steps_per_epoch = train.len() / per_step;
    while state.epoch < o.epochs {
        let epoch = state.epoch;
        let t0 = std::time::Instant::now();
        let (loss, correct, seen) = run_epoch(&mut trainer, train, o, epoch, state.lr, |s, st| {
            progress(epoch + 1, s + 1, steps_per_epoch, st)
        })
        .map_err(|e| match (e, &o.out) {
            (Error::Diverged(m), Some(dir)) if epoch > 0 || matches!(start, Start::Resume(_)) => {
                Error::Diverged(format!(
                    "{m}; the last good checkpoint is {} (epoch {epoch}): resume from it with a \
                     lower learning rate",
                    dir.join("checkpoint.safetensors").display()
                ))
            }
            (Error::Diverged(m), _) => {
                Error::Diverged(format!("{m}; no checkpoint was written: try a lower rate"))
            }
            (e, _) => e,
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
        records.push(rec);
        state.after_epoch(o.schedule, acc);
        state.steps = trainer.steps();
        state.loss_scale =
            (o.train.precision == crate::gpu::Precision::F16).then(|| trainer.loss_scale());
        if let Some(dir) = &o.out {
            let momentum = trainer.momentum()?;
            checkpoint(dir, model, o, &state, (&weights, &momentum), &records)?;
        }
    }
    Ok((trainer.weights()?, history))
}

/// The data's images are the model's input, or with a training scale, stored larger with
/// the model's channels and cropped to the input per step.
fn check_data(model: &Model, train: &Dataset, o: &FitOptions) -> Result<()> {
    let [c, h, w] = model.input_dims();
    match &o.scale {
        Some(j) if train.dims.0 == c && j.crop == (h, w) => j.validate(train.dims),
        _ if train.dims == (c, h, w) => Ok(()),
        _ => Err(Error::Shape(format!(
            "the data holds {:?} images, {} takes {c}x{h}x{w}",
            train.dims,
            model.name()
        ))),
    }
}

/// A run continued from the checkpoint at `p`: its state (at `o`'s rate where given),
/// the trainer with its weights, momentum, step count and loss scale, and the records of
/// its epochs so far.
fn resumed<'a>(
    gpu: &'a Gpu,
    model: &Model,
    o: &FitOptions,
    p: &Path,
) -> Result<(RunState, Trainer<'a>, Vec<EpochStats>)> {
    let (mut state, w0, momentum, mut records) = RunState::resume(p, model)?;
    state.lr = o.lr_on_resume.unwrap_or(state.lr);
    records.retain(|r: &EpochStats| r.epoch <= state.epoch);
    // A checkpoint of other shapes fails here: name the file.
    let named = |e: Error| match e {
        e @ Error::Shape(_) => crate::io::file_err(p, e),
        e => e,
    };
    let mut t = Trainer::new(gpu, model, &w0, o.train).map_err(named)?;
    t.set_momentum(&momentum, state.steps).map_err(named)?;
    if let Some((scale, good)) = state.loss_scale {
        t.set_loss_scale(scale, good).map_err(named)?;
    }
    Ok((state, t, records))
}

/// Writes the epoch's checkpoint and metrics.csv into `dir`. The records travel in the
/// checkpoint, and metrics.csv is rewritten from them, so the two always agree, whatever
/// interrupted the last epoch.
fn checkpoint(
    dir: &Path,
    model: &Model,
    o: &FitOptions,
    state: &RunState,
    (weights, momentum): (&Weights, &Weights),
    records: &[EpochStats],
) -> Result<()> {
    let csv = metrics_csv(records);
    let mut meta = state.metadata(model);
    meta.insert("metrics".into(), csv.clone());
    if let Some(card) = &o.card {
        meta.extend(card.to_metadata());
    }
    save_checkpoint(
        &dir.join("checkpoint.safetensors"),
        weights,
        momentum,
        &meta,
    )?;
    crate::io::write_atomically(&dir.join("metrics.csv"), csv.as_bytes())
}

/// A run's hold on its output folder: an advisory lock (flock) on `.vgg.lock` inside it,
/// held while this lives. The kernel releases it when the process ends in any way, so a
/// run killed with SIGKILL never blocks the next one.
pub struct OutLock {
    _file: Option<std::fs::File>,
    /// The folder, as this process's holds count it (see `HELD`).
    key: std::path::PathBuf,
}

/// Folders this process holds, with how many holds each: the CLI takes its folder before
/// loading the data and `fit` takes it again, and a second flock from the same process on
/// a new descriptor would refuse the first.
static HELD: std::sync::Mutex<Vec<(std::path::PathBuf, usize)>> = std::sync::Mutex::new(Vec::new());

impl Drop for OutLock {
    fn drop(&mut self) {
        if let Ok(mut held) = HELD.lock() {
            if let Some(i) = held.iter().position(|(k, _)| *k == self.key) {
                held[i].1 -= 1;
                if held[i].1 == 0 {
                    held.swap_remove(i);
                }
            }
        }
    }
}

/// A hold on `dir` when this process has one already (None when it has not).
fn held_again(key: &Path) -> Option<OutLock> {
    let mut held = HELD.lock().ok()?;
    let entry = held.iter_mut().find(|(k, _)| k == key)?;
    entry.1 += 1;
    Some(OutLock {
        _file: None,
        key: key.to_path_buf(),
    })
}

fn hold(key: std::path::PathBuf, file: std::fs::File) -> OutLock {
    if let Ok(mut held) = HELD.lock() {
        held.push((key.clone(), 1));
    }
    OutLock {
        _file: Some(file),
        key,
    }
}

/// Creates the output folder of a run (so a mistake in the path fails before any work),
/// takes the folder for this run alone (a second run into it is refused at once, naming the
/// holder's pid), and refuses to start a fresh run over an earlier one's checkpoint and
/// metrics.
pub fn prepare_out(dir: &Path, resume: bool) -> Result<OutLock> {
    std::fs::create_dir_all(dir)
        .map_err(|e| crate::io::file_err(dir, format!("cannot create: {e}")))?;
    let lock = lock_out(dir)?;
    let ckpt = dir.join("checkpoint.safetensors");
    if resume && !ckpt.exists() {
        return Err(crate::io::file_err(&ckpt, "no checkpoint to resume from"));
    }
    if !resume && (ckpt.exists() || dir.join("metrics.csv").exists()) {
        return Err(crate::io::file_err(
            dir,
            "already holds a training run (checkpoint.safetensors, metrics.csv): resume it, \
             or write to another folder",
        ));
    }
    Ok(lock)
}

#[cfg(unix)]
fn lock_out(dir: &Path) -> Result<OutLock> {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let key = std::fs::canonicalize(dir).map_err(|e| crate::io::file_err(dir, e))?;
    if let Some(again) = held_again(&key) {
        return Ok(again);
    }
    let path = dir.join(".vgg.lock");
    let fail = |m: String| crate::io::file_err(&path, m);
    // Not through a symlink, and never blocking on a FIFO planted under the name.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| fail(format!("cannot open the run's lock file: {e}")))?;
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err(fail("is not a regular file; remove it".into()));
    }
    // SAFETY: flock on a descriptor this function owns; no memory is passed.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(fail(format!("cannot lock: {e}")));
        }
        let mut pid = String::new();
        let _ = Read::by_ref(&mut f).take(32).read_to_string(&mut pid);
        let holder = match pid.trim().parse::<u32>() {
            Ok(p) => format!("pid {p}"),
            Err(_) => "another process".into(),
        };
        return Err(crate::io::file_err(
            dir,
            format!(
                "is in use by another training run ({holder}); wait for it to end, or write \
                 to another folder"
            ),
        ));
    }
    // Ours now: record the pid for the message above (best effort).
    let _ = f
        .set_len(0)
        .and_then(|_| f.rewind())
        .and_then(|_| writeln!(f, "{}", std::process::id()));
    Ok(hold(key, f))
}

#[cfg(not(unix))]
fn lock_out(dir: &Path) -> Result<OutLock> {
    let path = dir.join(".vgg.lock");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| crate::io::file_err(&path, format!("cannot open: {e}")))?;
    let key = std::fs::canonicalize(dir).map_err(|e| crate::io::file_err(dir, e))?;
    Ok(match held_again(&key) {
        Some(again) => again,
        None => hold(key, f),
    })
}

const METRICS_HEADER: &str = "epoch,lr,loss,train_accuracy,test_accuracy,images_per_second";

/// The records as metrics.csv's text.
fn metrics_csv(records: &[EpochStats]) -> String {
    let mut text = format!("{METRICS_HEADER}\n");
    for r in records {
        text.push_str(&format!(
            "{},{},{:.6},{:.6},{:.6},{:.2}\n",
            r.epoch, r.lr, r.loss, r.train_accuracy, r.test_accuracy, r.images_per_second
        ));
    }
    text
}

/// metrics.csv's text back into records.
fn parse_metrics(text: &str) -> std::result::Result<Vec<EpochStats>, String> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Vec<f64> = l
                .split(',')
                .map(|x| x.trim().parse::<f64>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| format!("metrics row '{l}' is not numbers"))?;
            match v[..] {
                [e, lr, loss, tr, te, ips] if e >= 1.0 && e.fract() == 0.0 => Ok(EpochStats {
                    epoch: e as usize,
                    lr: lr as f32,
                    loss,
                    train_accuracy: tr,
                    test_accuracy: te,
                    images_per_second: ips,
                }),
                _ => Err(format!("metrics row '{l}' is not {METRICS_HEADER}")),
            }
        })
        .collect()
}

/// One epoch's steps in a shuffled order (seeded by the seed and the epoch, so a resumed
/// run continues the same sequence); returns the summed loss, the correct count and the
/// images seen. A second thread assembles and augments the next batch while the current
/// step runs on the GPU, and the batch is uploaded before waiting for that step; the
/// batches do not depend on that timing, so a run is the same as one step at a time.
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
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut rng =
        rand_chacha::ChaCha8Rng::seed_from_u64(o.train.seed ^ ((epoch as u64 + 1) * 0x9E37));
    order.shuffle(&mut rng);
    let order = &order;
    let (mut loss, mut correct, mut seen) = (0.0, 0, 0);
    std::thread::scope(|scope| {
        // One batch ahead: the producer blocks until the step before takes its batch.
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        scope.spawn(move || {
            for s in 0..steps_per_epoch {
                // A closed channel means the steps stopped (an error): stop too.
                if tx.send(batch(train, o, order, epoch, s)).is_err() {
                    break;
                }
            }
        });
        let next = || -> Result<(Tensor, Vec<u32>)> {
            rx.recv()
                .map_err(|_| Error::Shape("the batch thread stopped".into()))?
        };
        if steps_per_epoch > 0 {
            let (x, labels) = next()?;
            trainer.stage(&x, &labels)?;
        }
        for s in 0..steps_per_epoch {
            trainer.submit(lr)?;
            // While the step runs: take the next batch from the thread and upload it.
            if s + 1 < steps_per_epoch {
                let (x, labels) = next()?;
                trainer.stage(&x, &labels)?;
            }
            let st = trainer.finish()?;
            if !st.loss.is_finite() || st.loss > DIVERGED_LOSS {
                return Err(Error::Diverged(format!(
                    "training diverged at epoch {} step {}: loss {} at learning rate {lr}",
                    epoch + 1,
                    s + 1,
                    st.loss
                )));
            }
            loss += st.loss * st.images as f64;
            correct += st.correct;
            seen += st.images;
            progress(s, &st);
        }
        Ok(())
    })?;
    Ok((loss, correct, seen))
}

/// Step `s` of `epoch`: its images in `order`, augmented, and their labels.
fn batch(
    train: &Dataset,
    o: &FitOptions,
    order: &[usize],
    epoch: usize,
    s: usize,
) -> Result<(Tensor, Vec<u32>)> {
    let per_step = o.train.batch * o.train.accumulate;
    let steps_per_epoch = train.len() / per_step;
    let idx = &order[s * per_step..(s + 1) * per_step];
    let (c, h, w) = match &o.scale {
        Some(j) => (train.dims.0, j.crop.0, j.crop.1),
        None => train.dims,
    };
    let mut data = Vec::with_capacity(per_step * c * h * w);
    // Seeded by (seed, epoch, step): a resumed run draws the same augmentations.
    let mut aug = rand_chacha::ChaCha8Rng::seed_from_u64(
        o.train.seed ^ ((epoch * steps_per_epoch + s) as u64).wrapping_mul(0x85EB_CA6B),
    );
    for &i in idx {
        let start = data.len();
        if let Some(j) = &o.scale {
            data.extend(j.view(train.image(i), train.dims, &mut aug));
            continue;
        }
        data.extend_from_slice(train.image(i));
        if o.augment && o.resized_crop {
            crate::io::datasets::random_resized_crop(&mut data[start..], train.dims, &mut aug);
        } else if o.augment {
            let pad = o.augment_pad;
            crate::io::datasets::augment(&mut data[start..], train.dims, pad, &mut aug);
        }
    }
    let labels: Vec<u32> = idx.iter().map(|&i| train.labels[i]).collect();
    Ok((Tensor::new(vec![per_step, c, h, w], data)?, labels))
}

/// Loss and accuracies per epoch from a `metrics.csv`, drawn as an SVG (loss above,
/// training and held-out accuracy below).
pub fn plot_metrics(csv: &Path, svg: &Path) -> Result<()> {
    use plotters::prelude::*;
    let text = crate::io::read_text(csv, 1 << 30, "a metrics table")?;
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
    // A panel's epochs against columns of `rows`, each in its colour.
    let panel = |area: &DrawingArea<SVGBackend, _>, caption, top_y, lines: &[(usize, RGBColor)]| {
        let mut c = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(0.5..last, 0.0..top_y)
            .map_err(|e| err(&e))?;
        c.configure_mesh()
            .x_desc("epoch")
            .draw()
            .map_err(|e| err(&e))?;
        for &(col, colour) in lines {
            let points = rows.iter().map(|r| (r[0], r[col]));
            c.draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(|e| err(&e))?;
        }
        Ok::<_, Error>(())
    };
    panel(&top, "training loss per epoch", max_loss, &[(2, RED)])?;
    let caption = "accuracy: training (blue), held-out (green)";
    panel(&bottom, caption, 1.0, &[(3, BLUE), (4, GREEN)])?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_plot_draws_loss_above_and_both_accuracies_below() {
        let dir = std::env::temp_dir().join(format!("vgg-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (csv, svg) = (dir.join("metrics.csv"), dir.join("metrics.svg"));
        let table = "epoch,lr,loss,train,held_out\n1,0.01,2.0,0.3,0.4\n2,0.01,1.5,0.5,0.6\n";
        std::fs::write(&csv, table).unwrap();
        plot_metrics(&csv, &svg).unwrap();
        let drawn = std::fs::read_to_string(&svg).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(drawn.contains("training loss per epoch"), "{drawn}");
        assert!(drawn.contains("accuracy: training (blue), held-out (green)"));
        // The loss in red, the accuracies in blue and green, each one line 2 wide.
        for colour in ["#FF0000", "#0000FF", "#00FF00"] {
            let line = format!("stroke=\"{colour}\" stroke-width=\"2\"");
            assert_eq!(drawn.matches(&line).count(), 1, "{colour}: {drawn}");
        }
    }

    fn state(lr: f32) -> RunState {
        RunState {
            epoch: 0,
            steps: 0,
            lr,
            best: 0.0,
            since_best: 0,
            drops: 0,
            loss_scale: None,
        }
    }

    /// A run whose held-out accuracy never improves after its first epoch: the plateau
    /// schedule divides the rate three times and then keeps it; constant keeps it; step
    /// multiplies on its epochs.
    #[test]
    fn the_plateau_schedule_divides_three_times_at_most() {
        let run = |schedule| {
            let mut s = state(0.05);
            let mut rates = Vec::new();
            for e in 0..12 {
                s.after_epoch(schedule, if e == 0 { 0.5 } else { 0.4 });
                rates.push(s.lr);
            }
            (rates, s.drops)
        };
        let (rates, drops) = run(Schedule::Plateau { patience: 2 });
        // Exactly the f32 nearest each power of ten, as metrics.csv then writes it.
        let want: Vec<f32> = vec![
            0.05, 0.05, 0.005, 0.005, 0.0005, 0.0005, 0.00005, 0.00005, 0.00005, 0.00005, 0.00005,
            0.00005,
        ];
        assert_eq!(rates, want);
        assert_eq!(rates[6].to_string(), "0.00005");
        assert_eq!(drops, PLATEAU_DROPS);
        assert_eq!(run(Schedule::Constant).0, vec![0.05; 12]);
        let (step, _) = run(Schedule::Step {
            every: 5,
            factor: 0.5,
        });
        assert_eq!((step[3], step[4], step[9]), (0.05, 0.025, 0.0125));
    }
}
