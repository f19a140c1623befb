//! `vgg train`: train on the GPU, evaluate every epoch, checkpoint.

use super::{AdapterArgs, ModelArgs};
use std::path::PathBuf;
use std::process::ExitCode;
use vgg_wgpu::io::datasets::Dataset;
use vgg_wgpu::model::Model;
use vgg_wgpu::train::fit::{self, Start};
use vgg_wgpu::{Error, Gpu};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Use the demo's small VGG for 28x28 digits instead of --model
    #[arg(long)]
    pub mnist_model: bool,
    /// The data: a file (mnist-csv), IMAGES,LABELS (mnist-idx), or batch files
    /// comma-separated (cifar10) [default: the bundled 5000 MNIST digits]
    #[arg(long)]
    pub data: Option<String>,
    /// mnist-csv, mnist-idx, cifar10, or folder (one subdirectory of JPEG/PNG images per
    /// class, resized and center-cropped to the model's input) [default: folder when --data
    /// is a directory, else mnist-csv]
    #[arg(long)]
    pub format: Option<String>,
    /// Random horizontal flips and crops of the training images [default: on for cifar10
    /// and folder, off for digits]
    #[arg(long)]
    pub augment: Option<bool>,
    /// How --augment crops: "shift" (a random crop of the image padded by 4 pixels, the
    /// paper's CIFAR recipe) or "resized-crop" (torchvision's RandomResizedCrop: 8-100% of
    /// the area, aspect 3/4-4/3, resized back; the ImageNet recipe) [default: resized-crop
    /// for folder images of 128 pixels or more, else shift]
    #[arg(long, value_parser = ["shift", "resized-crop"])]
    pub augment_crop: Option<String>,
    /// The paper's single-scale training (folder data): each image rescaled so its shorter
    /// side is S, then a random crop of the input size, a random horizontal flip and the
    /// colour shift. The paper's S for a 224 input is 256 or 384. Images are read once at S
    /// (the center square kept) and the held-out set is the center crop at S
    #[arg(long, value_name = "S", conflicts_with_all = ["augment_crop", "scale_jitter"])]
    pub scale: Option<u32>,
    /// The paper's scale jittering (folder data): as --scale, with S drawn per image
    /// uniformly from SMIN..SMAX (the paper's 256,512 for a 224 input). Images are read
    /// once at SMAX and rescaled per step; the held-out set is the center crop at
    /// (SMIN+SMAX)/2, the paper's test scale
    #[arg(long, value_name = "SMIN,SMAX", conflicts_with = "augment_crop")]
    pub scale_jitter: Option<String>,
    /// With --scale or --scale-jitter: AlexNet's colour augmentation, the paper's: each
    /// training image shifted along the principal components of the training set's pixel
    /// colours (computed once, recorded in the model) by N(0, 0.1)-weighted eigenvalues
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub colour_shift: bool,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Images per micro-batch
    #[arg(long, short, default_value_t = 32)]
    pub batch_size: usize,
    /// Micro-batches per optimisation step (a logical batch of batch-size x accumulate)
    #[arg(long, default_value_t = 1)]
    pub accumulate: usize,
    /// Learning rate, above 0 and at most 100 [default: 0.05; with --resume, the
    /// checkpoint's, which a given --lr replaces (after a divergence, say)]
    #[arg(long)]
    pub lr: Option<f32>,
    /// How the rate changes between epochs: constant; step:EVERY:FACTOR (multiply by
    /// FACTOR every EVERY epochs); or plateau[:PATIENCE], the paper's (divide by 10 when
    /// held-out accuracy has not improved for PATIENCE epochs, three times at most). The
    /// default is PyTorch's usual recipe for a run this short (torchvision's reference
    /// divides only at epoch 30): on small data a plateau schedule reads noise in the
    /// held-out accuracy as a plateau and stalls the run. For the paper's protocol, give
    /// --schedule plateau:2 with --lr 0.01 and many epochs
    #[arg(long, default_value = "constant")]
    pub schedule: String,
    /// Seed of the initial weights, the shuffling and the dropout masks
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images held out for evaluation, picked by a fixed pseudo-random permutation: a
    /// fraction (0.1) or a count (1000)
    #[arg(long, default_value = "0.1")]
    pub holdout: String,
    /// With --format folder: evaluate on this folder of the same class subdirectories
    /// instead of holding images out of --data
    #[arg(long, value_name = "DIR")]
    pub val: Option<PathBuf>,
    /// Turn dropout off
    #[arg(long)]
    pub no_dropout: bool,
    /// Directory for checkpoint.safetensors (every epoch), metrics.csv, and at the end
    /// model.safetensors and metrics.svg (loss and accuracy per epoch)
    #[arg(long, default_value = "train-out")]
    pub out: PathBuf,
    /// Continue from OUT/checkpoint.safetensors exactly where it stopped
    #[arg(long)]
    pub resume: bool,
    /// Start from these weights (any file the engine reads: safetensors, a PyTorch .pth
    /// such as torchvision's own VGG download, or an ONNX graph of a VGG) instead of a
    /// random initialisation: fine-tuning. Where the class count differs the last FC layer
    /// is drawn anew and the rest loaded; a file that records its model gives the model
    /// too, unless --model says otherwise. Or how to draw the weights: kaiming
    /// (torchvision's, the default), paper (N(0, 0.01) weights, zero biases) or glorot
    /// (Glorot's uniform draw, the paper's footnote); a file of one of those names is
    /// ./NAME
    #[arg(long, value_name = "FILE|DRAW", conflicts_with = "resume")]
    pub init: Option<PathBuf>,
    /// The paper's start for a deeper net: the first four conv layers (A's conv1_1,
    /// conv2_1, conv3_1, conv3_2, taken by name) and the last three FC layers from this
    /// trained shallower net (its config A, any file that records its model), every other
    /// layer drawn as --init says; each taken layer is checked by shape
    #[arg(long, value_name = "A_WEIGHTS", conflicts_with = "resume")]
    pub init_from: Option<PathBuf>,
    /// Keep these layers bitwise as loaded, skipping their gradients: features (every conv
    /// and batch norm) or conv1..convN (blocks 1 to N)
    #[arg(long, value_name = "LAYERS", requires = "init")]
    pub freeze: Option<String>,
    /// Refuse images (with --format folder) declaring more pixels than this, or resizing
    /// to more, before decoding them
    #[arg(long, value_name = "PIXELS", default_value_t = vgg_wgpu::io::image::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// The convolutions' and FC layers' multiply operands: f32, or f16 (mixed precision as
    /// PyTorch's AMP: f16 operands with f32 sums on tensor cores where the adapter lists
    /// cooperative matrices of 16x16x16 f16->f32, weights kept and updated in f32, the loss
    /// scaled dynamically (from 2^16, halved and the step skipped on an overflow, doubled
    /// after 2000 clean steps). Elsewhere f16 runs the f32 kernels, the loss scaling
    /// included. Activations and gradients stay f32
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16"])]
    pub precision: String,
    #[command(flatten)]
    pub gpu: AdapterArgs,
}

impl Args {
    /// The data's format: as given, else a folder of classes when --data is a directory.
    fn format(&self) -> &str {
        match (&self.format, &self.data) {
            (Some(f), _) => f,
            (None, Some(d)) if std::path::Path::new(d).is_dir() => "folder",
            (None, _) => "mnist-csv",
        }
    }

    pub fn run(self) -> vgg_wgpu::Result<ExitCode> {
        self.check_init_flags()?;
        // The --init file, read once (a .pth or ONNX file is parsed whole for its card).
        let init = match self.init_file() {
            Some(p) => Some(vgg_wgpu::io::weights::Opened::open(p)?),
            None => None,
        };
        // Opened and its model read now, so a wrong file stops the run before the data
        // loads; its layers are checked against the run's model (classes from the data)
        // where the weights are made.
        let shallower = match &self.init_from {
            Some(p) => Some(shallower_net(p)?),
            None => None,
        };
        let init_card = self.init_card(init.as_ref());
        let model = self.model(init_card.as_ref())?;
        let o = self.fit_options(&model)?;
        // Every option and the output folder are checked before the data loads (which can
        // take minutes).
        o.validate()?;
        // A resumed run continues at the scales (and with the colour components) its
        // checkpoint records.
        let recorded = init_card
            .as_ref()
            .filter(|_| self.resume)
            .and_then(|c| c.scale.clone());
        let scales = self.scales(&model, recorded.as_ref())?;
        // Held to the end of the run: no second run writes into this folder meanwhile.
        let _lock = vgg_wgpu::train::fit::prepare_out(&self.out, self.resume)?;
        let side = model.input_dims()[1].max(model.input_dims()[2]) as u32;
        let pre = self.preprocessing(init_card.as_ref(), side);
        let (model, train, test, names) = self.data(model, &pre, scales)?;
        let jitter = self.jitter(&model, &train, scales, recorded)?;
        let card = card_for(&model, pre, names, jitter.as_ref())?;
        let frozen = match &self.freeze {
            Some(spec) => vgg_wgpu::train::frozen_prefix(&model, spec)?,
            None => 0,
        };
        let o = vgg_wgpu::train::fit::FitOptions {
            card: Some(card.clone()),
            scale: jitter,
            train: vgg_wgpu::train::TrainOptions { frozen, ..o.train },
            ..o
        };
        let gpu = Gpu::new(&self.gpu.options())?;
        self.announce(&gpu, &model, &card, (train.len(), test.len()), &o);
        let init = self.initial_weights(&model, init, shallower)?;
        let weights = self.fit(&gpu, &model, &init, (&train, &test), &o)?;
        let path = self.out.join("model.safetensors");
        weights.save_with(&path, Some(&card))?;
        let (csv, svg) = (self.out.join("metrics.csv"), self.out.join("metrics.svg"));
        vgg_wgpu::train::fit::plot_metrics(&csv, &svg)?;
        errln!(
            "wrote {} (metrics in {}, plotted in {})",
            path.display(),
            csv.display(),
            svg.display()
        );
        Ok(ExitCode::SUCCESS)
    }

    /// --init FILE with --init-from, and --freeze without --init FILE, refused.
    fn check_init_flags(&self) -> vgg_wgpu::Result<()> {
        if let (Some(_), Some(f)) = (&self.init_from, self.init_file()) {
            return Err(Error::InvalidOption {
                option: "--init-from".into(),
                message: format!(
                    "takes its layers from one file; --init {} gives all of them (give --init \
                     a draw, {}, for the layers it does not take)",
                    f.display(),
                    vgg_wgpu::Init::NAMES.join(", ")
                ),
            });
        }
        if self.freeze.is_some() && self.init_file().is_none() {
            return Err(Error::InvalidOption {
                option: "--freeze".into(),
                message: "keeps loaded layers as they are: it needs --init FILE".into(),
            });
        }
        Ok(())
    }

    /// What is about to run: the model, the data, the adapter, the classes of a folder,
    /// and where f16 falls back to f32 multiplies.
    fn announce(
        &self,
        gpu: &Gpu,
        model: &Model,
        card: &vgg_wgpu::model::Card,
        (train, test): (usize, usize),
        o: &vgg_wgpu::train::fit::FitOptions,
    ) {
        errln!(
            "training {} on {} ({train} train, {test} held out) on {}",
            model.name(),
            self.format(),
            gpu.describe()
        );
        if self.format() == "folder" {
            // The class indices the model's outputs will mean, in the order inference shows.
            let shown: Vec<&str> = card.classes.iter().take(20).map(String::as_str).collect();
            let more = card.classes.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            errln!("{} classes: {}{more}", card.classes.len(), shown.join(", "));
        }
        let f16 = o.train.precision == vgg_wgpu::gpu::Precision::F16;
        if f16 && !gpu.cooperative_matrix() {
            errln!(
                "{} lists no cooperative matrices of {}: f16 training multiplies in f32 \
                 here (with the loss scaling)",
                gpu.info().name,
                vgg_wgpu::gpu::COOP_SHAPE
            );
        }
    }

    /// Runs `fit` with a progress bar per epoch and a line per finished epoch.
    fn fit(
        &self,
        gpu: &Gpu,
        model: &Model,
        init: &vgg_wgpu::model::Weights,
        (train, test): (&Dataset, &Dataset),
        o: &vgg_wgpu::train::fit::FitOptions,
    ) -> vgg_wgpu::Result<vgg_wgpu::model::Weights> {
        let f16 = o.train.precision == vgg_wgpu::gpu::Precision::F16;
        // Building the trainer compiles its kernels and the first step runs before any
        // progress: say so, where it can take a minute (a software adapter).
        use super::progress::Progress;
        let compiling = "compiling the training kernels and running the first step";
        let bar = std::cell::RefCell::new(Progress::spinner(compiling, false));
        let (t0, epochs) = (std::time::Instant::now(), self.epochs);
        let mut done = 0usize;
        // Steps of the current epoch that overflowed, and the loss scale after the last.
        let skipped = std::cell::Cell::new((0usize, 0f32));
        // The epoch whose steps the bar counts (0: the spinner is up).
        let mut bar_epoch = 0;
        let ckpt = self.out.join("checkpoint.safetensors");
        let (weights, _) = fit::fit(
            gpu,
            model,
            match self.resume {
                true => Start::Resume(&ckpt),
                false => Start::From(init),
            },
            (train, test),
            o,
            |epoch, s, steps, st| {
                done += st.images;
                let (k, _) = skipped.get();
                skipped.set((k + st.skipped as usize, st.loss_scale));
                if bar_epoch != epoch {
                    bar_epoch = epoch;
                    bar.replace(Progress::bar(
                        steps as u64,
                        &format!("steps of epoch {epoch}/{epochs}"),
                        false,
                    ))
                    .finish();
                }
                let rate = done as f64 / t0.elapsed().as_secs_f64();
                let b = bar.borrow();
                b.set_position(s as u64);
                b.set_message(format!(
                    "loss {:.4} acc {:5.1}% {} images/s",
                    st.loss,
                    100.0 * st.correct as f64 / st.images as f64,
                    show_rate(rate)
                ));
            },
            |e| {
                let (k, scale) = skipped.replace((0, 0.0));
                let scaling = match f16 {
                    true => format!(", loss scale {scale} ({k} steps skipped)"),
                    false => String::new(),
                };
                bar.borrow().line(&format!(
                    "epoch {}: loss {:.4}, train accuracy {:.2}%, held-out accuracy {:.2}%, \
                     lr {}, {} images/s{scaling}",
                    e.epoch,
                    e.loss,
                    100.0 * e.train_accuracy,
                    100.0 * e.test_accuracy,
                    show_lr(e.lr),
                    show_rate(e.images_per_second)
                ));
            },
        )?;
        bar.borrow().finish();
        Ok(weights)
    }

    /// The card of the --init file where something reads it: the model (unless --model
    /// gives one) or, for folder data, the preprocessing. With --resume, the checkpoint's
    /// card instead: a run resumes with the model and preprocessing it started with, and
    /// flags that disagree with the checkpoint are refused when it is read.
    fn init_card(
        &self,
        init: Option<&vgg_wgpu::io::weights::Opened>,
    ) -> Option<vgg_wgpu::model::Card> {
        let ckpt = self.out.join("checkpoint.safetensors");
        if self.resume && !self.mnist_model {
            if let Ok(Some(card)) = vgg_wgpu::io::weights::read_card(&ckpt) {
                return Some(card);
            }
        }
        match init {
            Some(o) if !self.model.names_model() || self.format() == "folder" => o.card().cloned(),
            _ => None,
        }
    }

    /// How folder images are preprocessed, and what the output's card records: for folder
    /// data, the --init file's preprocessing where it records one other than unit (a
    /// torchvision model fine-tunes on torchvision-normalised images, its resize scaled to
    /// the input side), else the unit preset at the input side.
    fn preprocessing(
        &self,
        init: Option<&vgg_wgpu::model::Card>,
        side: u32,
    ) -> vgg_wgpu::model::card::Preprocessing {
        use vgg_wgpu::model::Preset;
        // The other formats load their images scaled to [0, 1] whatever the weights.
        let recorded = init
            .filter(|_| self.format() == "folder")
            .map(|c| c.preprocessing);
        match recorded.filter(|r| r.preset != Preset::Unit && r.crop > 0) {
            Some(r) => vgg_wgpu::model::card::Preprocessing {
                preset: r.preset,
                resize: (r.resize as u64 * side as u64 / r.crop as u64) as u32,
                crop: side,
            },
            None => vgg_wgpu::io::datasets::folder_preprocessing(side),
        }
    }

    /// The model: the demo's, the flags', or the one the --init file records.
    fn model(&self, init: Option<&vgg_wgpu::model::Card>) -> vgg_wgpu::Result<Model> {
        if self.mnist_model {
            return vgg_wgpu::train::mnist_model();
        }
        let ckpt = self.out.join("checkpoint.safetensors");
        if self.resume {
            // The checkpoint's model, with any flag that disagrees refused by name.
            if let Ok(Some(card)) = vgg_wgpu::io::weights::read_card(&ckpt) {
                // The checkpoint's model with the flags given applied: a flag left out
                // takes the checkpoint's value, a flag given must agree with it.
                let theirs = card.model()?;
                let mut flags = self.model.clone();
                if let Some(spec) = flags.model.take() {
                    let c = theirs.config();
                    let named = Model::parse_as(&spec, |n| {
                        (n.input, n.in_channels) = (c.input, c.in_channels)
                    })?;
                    if named.config().features != c.features {
                        return Err(vgg_wgpu::io::file_err(
                            &ckpt,
                            format!(
                                "holds a model of other layers ({}) than --model asks for ({})",
                                theirs.name(),
                                named.name()
                            ),
                        ));
                    }
                }
                return flags.against_card(&theirs, &ckpt);
            }
        }
        match init.filter(|_| !self.model.names_model()) {
            Some(card) => self.model.build_from(card.model()?),
            None => self.model.build(),
        }
    }

    fn fit_options(&self, model: &Model) -> vgg_wgpu::Result<vgg_wgpu::train::fit::FitOptions> {
        Ok(vgg_wgpu::train::fit::FitOptions {
            epochs: self.epochs,
            lr: self.lr.unwrap_or(0.05),
            lr_on_resume: self.lr.filter(|_| self.resume),
            schedule: vgg_wgpu::train::fit::Schedule::parse(&self.schedule)?,
            train: vgg_wgpu::train::TrainOptions {
                batch: self.batch_size,
                accumulate: self.accumulate,
                dropout: !self.no_dropout,
                seed: self.seed,
                // clap has checked the name.
                precision: super::precision_named(&self.precision)
                    .unwrap_or(vgg_wgpu::gpu::Precision::F32),
                ..Default::default()
            },
            out: Some(self.out.clone()),
            augment: self
                .augment
                .unwrap_or(self.format() == "cifar10" || self.format() == "folder"),
            augment_pad: 4,
            resized_crop: match self.augment_crop.as_deref() {
                Some(c) => c == "resized-crop",
                None => {
                    self.format() == "folder"
                        && model.config().input.0.min(model.config().input.1) >= 128
                }
            },
            scale: None,
            card: None,
        })
    }

    /// The training scales --scale or --scale-jitter ask for, checked against the model's
    /// input and the data format before any image loads; on a resume, those the checkpoint
    /// records, which flags given have to repeat.
    fn scales(
        &self,
        model: &Model,
        recorded: Option<&vgg_wgpu::model::card::TrainingScale>,
    ) -> vgg_wgpu::Result<Option<(usize, usize)>> {
        let now = self.flag_scales(model)?;
        if now.is_none() && !self.colour_shift && recorded.is_none() {
            return Err(Error::InvalidOption {
                option: "--colour-shift".into(),
                message: "false only means something with --scale or --scale-jitter".into(),
            });
        }
        if !self.resume {
            return Ok(now);
        }
        let ckpt = self.out.join("checkpoint.safetensors");
        let refuse = |m: &str| Err(vgg_wgpu::io::file_err(&ckpt, m));
        match recorded {
            Some(r) if !self.colour_shift && r.colour.is_some() => {
                refuse("was trained with the colour shift; resume it with it")
            }
            Some(r) => {
                let was = Some((r.min as usize, r.max as usize));
                match now.is_none() || now == was {
                    true => Ok(was),
                    false => refuse(&format!(
                        "was trained at scales {}..{}; the flags ask for others",
                        r.min, r.max
                    )),
                }
            }
            None if now.is_some() => {
                refuse("was trained without --scale or --scale-jitter; resume it without")
            }
            None => Ok(None),
        }
    }

    /// The training scales the flags ask for.
    fn flag_scales(&self, model: &Model) -> vgg_wgpu::Result<Option<(usize, usize)>> {
        let bad = |option: &str, message: String| Error::InvalidOption {
            option: option.into(),
            message,
        };
        let (option, range) = match (&self.scale, &self.scale_jitter) {
            (Some(s), _) => ("--scale", (*s as usize, *s as usize)),
            (None, Some(spec)) => {
                let parsed = spec
                    .split_once(',')
                    .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
                match parsed {
                    Some(r) => ("--scale-jitter", r),
                    None => {
                        return Err(bad(
                            "--scale-jitter",
                            format!("'{spec}' is not SMIN,SMAX (two whole numbers)"),
                        ))
                    }
                }
            }
            (None, None) => return Ok(None),
        };
        if self.format() != "folder" {
            return Err(bad(
                option,
                format!(
                    "rescales images as read from a folder (--format folder); {} images come at \
                     one size",
                    self.format()
                ),
            ));
        }
        let [_, h, w] = model.input_dims();
        let (min, max) = range;
        if min > max || min < h.max(w) || max > MAX_SCALE {
            return Err(bad(
                option,
                format!(
                    "{min}..{max}: the scales must be ordered, at least the input side {} and \
                     at most {MAX_SCALE}",
                    h.max(w)
                ),
            ));
        }
        Ok(Some(range))
    }

    /// The scale jittering of a run, its colour PCA computed from the stored training
    /// images.
    fn jitter(
        &self,
        model: &Model,
        train: &Dataset,
        scales: Option<(usize, usize)>,
        recorded: Option<vgg_wgpu::model::card::TrainingScale>,
    ) -> vgg_wgpu::Result<Option<vgg_wgpu::io::scale::Jitter>> {
        let Some((min, max)) = scales else {
            return Ok(None);
        };
        let [_, h, w] = model.input_dims();
        let colour = match (recorded, self.colour_shift) {
            // The components the run started with, as recorded.
            (Some(r), _) => r.colour,
            (None, true) => Some(vgg_wgpu::io::scale::pca_of_images(
                &train.images,
                train.dims,
            )?),
            (None, false) => None,
        };
        Ok(Some(vgg_wgpu::io::scale::Jitter {
            min,
            max,
            crop: (h, w),
            colour,
        }))
    }

    /// The training and held-out sets and the class names, with the model given the data's
    /// class count unless --classes set one.
    fn data(
        &self,
        model: Model,
        pre: &vgg_wgpu::model::card::Preprocessing,
        scales: Option<(usize, usize)>,
    ) -> vgg_wgpu::Result<(Model, Dataset, Dataset, Vec<String>)> {
        let [ic, h, w] = model.input_dims();
        // With scale jittering, images are stored at the largest scale and the held-out
        // ones center-cropped at the test scale.
        let stored = match scales {
            Some((_, max)) => vgg_wgpu::model::card::Preprocessing {
                resize: max as u32,
                crop: max as u32,
                ..*pre
            },
            None => *pre,
        };
        let load = |d: Option<&str>| load_data(self.format(), d, ic, &stored, self.max_pixels);
        let held_out = |d: Dataset| match scales {
            Some((min, max)) => {
                let q = vgg_wgpu::io::scale::test_scale(min, max);
                vgg_wgpu::io::scale::center_views(&d, q, (h, w))
            }
            None => Ok(d),
        };
        let (data, names) = load(self.data.as_deref())?;
        let model = match self.model.classes() {
            None if model.classes() != data.classes => model.with_classes(data.classes)?,
            _ => model,
        };
        let (train, test) = match &self.val {
            Some(dir) if self.format() == "folder" => {
                let (v, val_names) = load(dir.to_str())?;
                if val_names != names {
                    return Err(vgg_wgpu::io::file_err(
                        dir,
                        format!("holds classes {val_names:?}; --data holds {names:?}"),
                    ));
                }
                (data, held_out(v)?)
            }
            Some(_) => {
                return Err(Error::InvalidOption {
                    option: "--val".into(),
                    message: "takes a folder of class subdirectories, with --format folder".into(),
                })
            }
            None => {
                let n = held_out_count(&self.holdout, data.len())?;
                let (train, test) = data.split(n)?;
                (train, held_out(test)?)
            }
        };
        Ok((model, train, test, names))
    }

    /// The --init file, unless --init names a draw.
    fn init_file(&self) -> Option<&std::path::Path> {
        self.init
            .as_deref()
            .filter(|p| p.to_str().and_then(vgg_wgpu::Init::named).is_none())
    }

    /// How fresh weights are drawn: --init's draw, else Kaiming.
    fn draw(&self) -> vgg_wgpu::Init {
        self.init
            .as_deref()
            .and_then(|p| p.to_str())
            .and_then(vgg_wgpu::Init::named)
            .unwrap_or(vgg_wgpu::Init::Kaiming)
    }

    /// Weights drawn from the seed, the --init file's (a new last FC layer where the class
    /// count differs), or the --init-from net's layers with the rest drawn.
    fn initial_weights(
        &self,
        model: &Model,
        init: Option<vgg_wgpu::io::weights::Opened>,
        shallower: Option<(vgg_wgpu::io::weights::Opened, Model)>,
    ) -> vgg_wgpu::Result<vgg_wgpu::Weights> {
        if let (Some(p), Some((opened, shallow))) = (&self.init_from, shallower) {
            let weights = opened.load(&shallow)?;
            let (w, taken) = vgg_wgpu::train::init_from_shallower(
                model,
                &shallow,
                &weights,
                self.draw(),
                self.seed,
            )
            .map_err(|e| vgg_wgpu::io::file_err(p, e))?;
            errln!(
                "{} initialised from {} ({}): {}; the rest drawn ({})",
                model.name(),
                p.display(),
                shallow.name(),
                taken.join(", "),
                format!("{:?}", self.draw()).to_lowercase()
            );
            return Ok(w);
        }
        let (Some(p), Some(init)) = (self.init_file(), init) else {
            return Ok(vgg_wgpu::Weights::init(model, self.draw(), self.seed));
        };
        let loaded = init.all()?;
        let (w, fresh) = vgg_wgpu::train::init_from(model, &loaded, self.seed)
            .map_err(|e| vgg_wgpu::io::file_err(p, e))?;
        if !fresh.is_empty() {
            errln!(
                "{}: {} drawn anew for {} classes",
                p.display(),
                fresh.join(", "),
                model.classes()
            );
        }
        Ok(w)
    }
}

/// The --init-from file, and the model its card records.
/// The model card of a run: the model, preprocessing and classes, and with a training
/// scale, the center crop at its test scale (what inference then applies with no flags)
/// and the scales and colour components a resumed run continues with.
fn card_for(
    model: &Model,
    pre: vgg_wgpu::model::card::Preprocessing,
    names: Vec<String>,
    jitter: Option<&vgg_wgpu::io::scale::Jitter>,
) -> vgg_wgpu::Result<vgg_wgpu::model::Card> {
    let mut card = vgg_wgpu::model::Card::new(model, pre, names)?;
    if let Some(j) = jitter {
        card.preprocessing.resize = j.test_scale() as u32;
        card.scale = Some(vgg_wgpu::model::card::TrainingScale {
            min: j.min as u32,
            max: j.max as u32,
            colour: j.colour.clone(),
        });
    }
    Ok(card)
}

fn shallower_net(p: &std::path::Path) -> vgg_wgpu::Result<(vgg_wgpu::io::weights::Opened, Model)> {
    let opened = vgg_wgpu::io::weights::Opened::open(p)?;
    match opened.card() {
        Some(card) => {
            let model = card.model()?;
            Ok((opened, model))
        }
        None => Err(vgg_wgpu::io::file_err(
            p,
            "records no model to take layers from; write it with `vgg convert --model ...` \
             first",
        )),
    }
}

/// Images per second, whole above 10, else to 3 significant digits: a VGG16 step on a CPU
/// driver runs at 0.06 images/s, which `{:.0}` showed as 0.
fn show_rate(r: f64) -> String {
    match r {
        r if !r.is_finite() || r >= 10.0 => format!("{r:.0}"),
        r if r >= 1.0 => format!("{r:.2}"),
        r if r > 0.0 => {
            let decimals = (2 - r.log10().floor() as i32) as usize;
            format!("{r:.decimals$}")
        }
        _ => "0".into(),
    }
}

/// A learning rate to 4 significant digits: the schedule's repeated f32 division by 10
/// leaves 0.05 at 0.00049999997 after two steps, which reads as noise.
fn show_lr(lr: f32) -> String {
    if !(lr.is_finite() && lr > 0.0) {
        return lr.to_string();
    }
    let decimals = (3 - (lr as f64).log10().floor() as i32).max(0) as usize;
    let s = format!("{lr:.decimals$}");
    match s.contains('.') {
        true => s.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => s,
    }
}

/// The held-out count a --holdout of `spec` (a fraction, or a count) takes of `len` images.
fn held_out_count(spec: &str, len: usize) -> vgg_wgpu::Result<usize> {
    let bad = || Error::InvalidOption {
        option: "--holdout".into(),
        message: format!("'{spec}' is neither a fraction between 0 and 1 nor an image count"),
    };
    if spec.contains('.') {
        let f: f64 = spec.trim().parse().map_err(|_| bad())?;
        if !(f > 0.0 && f < 1.0) {
            return Err(bad());
        }
        Ok(((len as f64 * f).round() as usize).max(1))
    } else {
        spec.trim().parse().map_err(|_| bad())
    }
}

/// The largest training scale: a 3-channel image stored at 1024x1024 takes 12 MB, so a
/// thousand of them 12 GB.
const MAX_SCALE: usize = 1024;

/// CIFAR-10's class names, in its label order.
const CIFAR10: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Training data by format, and its class names; `channels` and `side` size the images of
/// a folder, which may not declare more than `max_pixels`.
fn load_data(
    format: &str,
    data: Option<&str>,
    channels: usize,
    pre: &vgg_wgpu::model::card::Preprocessing,
    max_pixels: u64,
) -> vgg_wgpu::Result<(vgg_wgpu::io::datasets::Dataset, Vec<String>)> {
    use vgg_wgpu::io::datasets as ds;
    let paths: Vec<PathBuf> = data
        .map(|d| d.split(',').map(PathBuf::from).collect())
        .unwrap_or_default();
    let digits = || (0..10).map(|d| d.to_string()).collect();
    match (format, paths.as_slice()) {
        ("mnist-csv", []) => Ok((ds::mnist_5k()?, digits())),
        ("mnist-csv", [p]) => Ok((ds::mnist_csv(p)?, digits())),
        ("mnist-idx", [i, l]) => Ok((ds::mnist_idx(i, l)?, digits())),
        ("cifar10", ps) if !ps.is_empty() => {
            let d = ds::cifar10(&ps.iter().map(|p| p.as_path()).collect::<Vec<_>>())?;
            Ok((d, CIFAR10.iter().map(|c| c.to_string()).collect()))
        }
        ("folder", [dir]) => ds::folder_as(dir, channels, pre, max_pixels),
        _ => {
            // What this format needs from --data, said for the format the user chose.
            let wants = match format {
                "mnist-csv" => "one CSV file (or none, for the bundled digits)",
                "mnist-idx" => "two IDX files, IMAGES,LABELS (gzipped or not)",
                "cifar10" => "one or more binary batch files, BATCH[,BATCH...]",
                "folder" => "one directory DIR, with a subdirectory of JPEG/PNG images per class",
                _ => {
                    return Err(Error::InvalidOption {
                        option: "--format".into(),
                        message: format!(
                            "'{format}' is no data format; use mnist-csv, mnist-idx, cifar10 \
                             or folder"
                        ),
                    })
                }
            };
            let given = match paths.len() {
                0 => "no --data was given".to_string(),
                1 => "--data names 1 path".to_string(),
                n => format!("--data names {n} paths"),
            };
            Err(Error::InvalidOption {
                option: "--data".into(),
                message: format!("--format {format} takes {wants}; {given}"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{load_data, show_lr, show_rate};

    #[test]
    fn slow_rates_keep_their_digits() {
        assert_eq!(show_rate(204.3), "204");
        assert_eq!(show_rate(10.0), "10");
        assert_eq!(show_rate(1.534), "1.53");
        assert_eq!(show_rate(0.0632), "0.0632");
        assert_eq!(show_rate(0.000123), "0.000123");
        assert_eq!(show_rate(0.0), "0");
    }

    /// A format without the --data it needs says what it needs; an unknown one lists the
    /// formats.
    #[test]
    fn data_errors_say_what_the_format_needs() {
        let pre = vgg_wgpu::io::datasets::folder_preprocessing(32);
        let err = |format: &str, data: Option<&str>| match load_data(format, data, 3, &pre, 1000) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{format} {data:?} loaded"),
        };
        let e = err("folder", None);
        assert!(
            e.contains("--format folder takes one directory DIR") && e.contains("no --data"),
            "{e}"
        );
        let e = err("mnist-idx", Some("a"));
        assert!(
            e.contains("IMAGES,LABELS") && e.contains("names 1 path"),
            "{e}"
        );
        let e = err("cifar", None);
        assert!(
            e.contains("'cifar' is no data format") && e.contains("cifar10"),
            "{e}"
        );
    }

    #[test]
    fn learning_rates_print_without_f32_noise() {
        let twice = 0.05f32 / 10.0 / 10.0;
        assert_eq!(show_lr(twice), "0.0005");
        assert_eq!(show_lr(0.05), "0.05");
        assert_eq!(show_lr(0.01), "0.01");
        assert_eq!(show_lr(0.000123456), "0.0001235");
        assert_eq!(show_lr(100.0), "100");
        assert_eq!(show_lr(1.5), "1.5");
    }
}
