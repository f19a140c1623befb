//! `vgg infer`: classify images, or extract a layer's features.

use super::{AdapterArgs, ModelArgs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use vgg_wgpu::gpu::Precision;
use vgg_wgpu::graph;
use vgg_wgpu::io::image::Preprocess;
use vgg_wgpu::model::card::Preprocessing;
use vgg_wgpu::model::{Card, Model, Preset};
use vgg_wgpu::{Error, Gpu, Network};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Weights: a safetensors file this engine wrote (its metadata records the model, its
    /// preprocessing and class names), a PyTorch .pth of a torchvision VGG, or an ONNX
    /// graph of a VGG (torchvision's export, the ONNX model zoo's, Keras' through tf2onnx):
    /// these need no model flags (flags that disagree are refused). Safetensors or a .pth of
    /// other networks take --model and its flags
    #[arg(long, short)]
    pub weights: PathBuf,
    /// Image files (JPEG, PNG) or directories of them
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Images per forward pass
    #[arg(long, short, default_value_t = 8)]
    pub batch_size: usize,
    /// Classes shown per image, 1 to 1000 (at most the model's classes are shown)
    #[arg(long, default_value_t = 5, value_parser = super::count_parser(1000))]
    pub top: usize,
    /// Print the results as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Class names, one per line [default: the weights file's, else ImageNet's 1000 when
    /// the model has 1000 classes, else class numbers]
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// torchvision (ImageNet mean and std on RGB in [0, 1]), caffe (BGR on 0..255 minus
    /// the mean pixel, Keras' VGG16) or unit (RGB, or gray for 1-channel models, in [0, 1],
    /// as this engine trains) [default: the weights file's, else torchvision]
    #[arg(long)]
    pub preprocess: Option<String>,
    /// Shorter side after resizing [default: the weights file's, else torchvision's 256]
    #[arg(long)]
    pub resize: Option<u32>,
    /// Side of the center crop, which is the network's input size [default: the weights
    /// file's, else torchvision's 224]
    #[arg(long)]
    pub crop: Option<u32>,
    /// Stop at the first file that is not a readable image, before classifying any
    /// [default: skip it with a warning]
    #[arg(long)]
    pub strict: bool,
    /// Extract this layer's output (pool5, relu5_3, fc7, ...; see `vgg summary`)
    /// instead of classifying; needs --out
    #[arg(long, requires = "out")]
    pub features: Option<String>,
    /// Where --features go: a .npy file (one array, images in input order) or a
    /// .safetensors file (the layer's name as tensor name, file list in the metadata)
    #[arg(long, requires = "features")]
    pub out: Option<PathBuf>,
    /// The paper's dense evaluation: no crop (the shorter side resized to --resize,
    /// at least 224), the FC layers run as convolutions over the whole image, class
    /// posteriors averaged over positions and over the mirrored image
    #[arg(long, conflicts_with = "features")]
    pub dense: bool,
    /// Storage of weights and activations on the GPU: f32, or f16 (half the memory and
    /// bandwidth; needs the adapter's shader-f16 feature). With f16 the convolutions (and FC
    /// layers at batches of 16 and more) run on tensor cores where the adapter lists
    /// cooperative matrices of 16x16x16 f16->f32 (f16 operands, f32 sums, as PyTorch's AMP);
    /// elsewhere their arithmetic stays f32
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16"])]
    pub precision: String,
    /// Refuse images declaring more pixels than this, or resizing to more, before decoding
    /// them
    #[arg(long, value_name = "PIXELS", default_value_t = vgg_wgpu::io::image::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    #[command(flatten)]
    pub gpu: AdapterArgs,
}

impl Args {
    pub fn run(self) -> vgg_wgpu::Result<ExitCode> {
        use vgg_wgpu::{infer, io};
        // A missing file is reported when the weights load, after the options are checked.
        // Opened once: a .pth or ONNX file is parsed whole for its card, then its tensors.
        let opened = match self.weights.exists() {
            true => Some(io::weights::Opened::open(&self.weights)?),
            false => None,
        };
        let card = opened.as_ref().and_then(|o| o.card().cloned());
        let preprocessing = self.preprocessing(card.as_ref())?;
        let model = self.network_model(card.as_ref(), preprocessing.crop)?;
        let pre = Preprocess {
            max_pixels: self.max_pixels,
            ..Preprocess::from_card(&preprocessing, model.config().in_channels)
        };
        // Options first, then the files, before the weights load (which takes a while).
        // Dense evaluation does not crop.
        Preprocess {
            crop: pre.crop.filter(|_| !self.dense),
            ..pre.clone()
        }
        .validate()?;
        let files = self.files(&model)?;
        let labels = self.labels(&model, card.as_ref())?;
        let label = |i: usize| {
            labels
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("class {i}"))
        };
        let w = match opened {
            Some(o) => o.load(&model)?,
            None => io::load_weights(&self.weights, &model)?,
        };
        let gpu = Gpu::new(&self.gpu.options())?;
        let net_opts = vgg_wgpu::NetworkOptions {
            // clap has checked the name.
            precision: super::precision_named(&self.precision).unwrap_or(Precision::F32),
            ..Default::default()
        };
        let mut net = Network::with_options(&gpu, &model, &w, net_opts)?;
        drop(w);
        let run_opts = infer::Options {
            pre,
            batch_size: self.batch_size,
            top: self.top,
            strict: self.strict,
            features: self.features.as_deref(),
            dense: self.dense,
        };
        let t0 = std::time::Instant::now();
        let mut json_results = Vec::new();
        let bar = super::progress::Progress::bar(files.len() as u64, "images", self.json);
        // A failed write to stdout (a full disk) stops printing; the error is returned once
        // the run is over (infer::run's callback cannot stop it).
        let mut unwritten = None;
        let (stats, feats, kept) = infer::run(&mut net, &files, &run_opts, |r| {
            bar.inc(1);
            if self.features.is_some() {
                return;
            }
            if self.json {
                let top: Vec<_> = r
                    .top
                    .iter()
                    .map(|&(c, p)| {
                        serde_json::json!({"class": c, "label": label(c), "probability": p})
                    })
                    .collect();
                json_results.push(serde_json::json!({
                    "file": r.path.display().to_string(),
                    "top": top,
                }));
            } else if unwritten.is_none() {
                if let Err(e) = bar.suspend(|| print_top(r, &label)) {
                    unwritten = Some(e);
                }
            }
        })?;
        if let Some(e) = unwritten {
            return Err(e);
        }
        bar.finish();
        let total = t0.elapsed().as_secs_f64();
        for e in &stats.skipped {
            errln!("warning: skipped {e}");
        }
        if let (Some(out), Some(f), Some(layer)) = (&self.out, &feats, &self.features) {
            save_features(out, f, layer, &model, &kept)?;
        }
        if self.json && self.features.is_none() {
            let skipped: Vec<String> = stats.skipped.iter().map(|e| e.to_string()).collect();
            let doc = serde_json::json!({
                "model": model.name(),
                "adapter": gpu.describe(),
                "results": json_results,
                "skipped": skipped,
                "images_per_second": stats.images as f64 / total,
            });
            outln!("{doc:#}")?;
        }
        Ok(summary(&model, &stats, total, &gpu))
    }

    /// The class names: --labels, else the weights file's, else ImageNet's for 1000
    /// classes, else "class i".
    fn labels(&self, model: &Model, card: Option<&Card>) -> vgg_wgpu::Result<Vec<String>> {
        use vgg_wgpu::io;
        Ok(match (&self.labels, card) {
            (Some(p), _) => io::labels::from_file(p, model.classes())?,
            (None, Some(c)) => c.classes.clone(),
            (None, None) if model.classes() == 1000 => io::labels::imagenet(),
            (None, None) => (0..model.classes()).map(|i| format!("class {i}")).collect(),
        })
    }

    /// The preprocessing: the flags', then the weights file's, then torchvision's.
    fn preprocessing(&self, card: Option<&Card>) -> vgg_wgpu::Result<Preprocessing> {
        let recorded = card.map(|c| c.preprocessing);
        Ok(Preprocessing {
            preset: match &self.preprocess {
                Some(p) => Preset::parse(p)?,
                None => recorded.map_or(Preset::Torchvision, |r| r.preset),
            },
            resize: self.resize.or(recorded.map(|r| r.resize)).unwrap_or(256),
            crop: self.crop.or(recorded.map(|r| r.crop)).unwrap_or(224),
        })
    }

    /// The model (the weights file's where it records one, checked against the flags) at
    /// the crop size, which is the network's input for infer.
    fn network_model(&self, card: Option<&Card>, crop: u32) -> vgg_wgpu::Result<Model> {
        let crop = crop as usize;
        if let Some((h, w)) = self.model.input.filter(|hw| *hw != (crop, crop)) {
            return Err(Error::InvalidOption {
                option: "--input".into(),
                message: format!(
                    "{h}x{w} disagrees with --crop {crop}: for infer the crop is the \
                     network's input; set --crop (and --resize) instead"
                ),
            });
        }
        let mut model = match card {
            Some(c) => self.model.against_card(&c.model()?, &self.weights)?,
            None => self.model.build()?,
        };
        if model.config().input != (crop, crop) {
            let c = model.config().in_channels;
            model = model.with_input(c, crop, crop)?;
        }
        Ok(model)
    }

    /// The image files to read, after checking the options that name outputs, so that a
    /// mistake there fails before any work.
    fn files(&self, model: &Model) -> vgg_wgpu::Result<Vec<PathBuf>> {
        let files = vgg_wgpu::io::image::collect_images(&self.images)?;
        if files.is_empty() {
            return Err(Error::InvalidOption {
                option: "images".into(),
                message: format!(
                    "no image files ({}) found in the paths given",
                    vgg_wgpu::io::image::IMAGE_EXTENSIONS.join(", ")
                ),
            });
        }
        if let Some(out) = &self.out {
            let ext = out.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ext != "npy" && ext != "safetensors" {
                return Err(Error::InvalidOption {
                    option: "--out".into(),
                    message: format!("{}: use a .npy or .safetensors file name", out.display()),
                });
            }
        }
        if let Some(layer) = &self.features {
            if layer != graph::PROB {
                model.layer_index(layer)?;
            }
        }
        Ok(files)
    }
}

/// One image's classes as the terminal shows them.
fn print_top(
    r: &vgg_wgpu::infer::ImageResult,
    label: &dyn Fn(usize) -> String,
) -> vgg_wgpu::Result<()> {
    outln!("{}", r.path.display())?;
    for (rank, &(c, p)) in r.top.iter().enumerate() {
        let name = label(c);
        let class = if name == format!("class {c}") {
            name
        } else {
            format!("{name} (class {c})")
        };
        outln!("  {:>2}  {:>7.3}%  {class}", rank + 1, p * 100.0)?;
    }
    Ok(())
}

/// `--features` output: a .npy array, or a safetensors file naming the layer and the files.
fn save_features(
    out: &Path,
    f: &vgg_wgpu::Tensor,
    layer: &str,
    model: &Model,
    kept: &[PathBuf],
) -> vgg_wgpu::Result<()> {
    use vgg_wgpu::io;
    if out.extension().and_then(|e| e.to_str()) == Some("npy") {
        io::npy::save(out, f)?;
    } else {
        let names: Vec<String> = kept.iter().map(|p| p.display().to_string()).collect();
        let meta = [
            ("model".to_string(), model.name().to_string()),
            ("layer".to_string(), layer.to_string()),
            ("files".to_string(), serde_json::json!(names).to_string()),
        ];
        io::save_safetensors(out, &[(layer, f)], Some(meta.into_iter().collect()))?;
    }
    errln!(
        "wrote {} of shape {:?} to {}",
        layer,
        f.shape,
        out.display()
    );
    Ok(())
}

/// The run's last line (images/s, per-image times, the adapter) and its exit status: a
/// failure where no image could be classified.
fn summary(model: &Model, stats: &vgg_wgpu::infer::RunStats, total: f64, gpu: &Gpu) -> ExitCode {
    let n = stats.images.max(1) as f64;
    errln!(
        "{}: {} images in {total:.2} s: {:.2} images/s, {:.1} ms per image (forward {:.1} \
         ms, decoding {:.1} ms) on {}",
        model.name(),
        stats.images,
        stats.images as f64 / total,
        1e3 * total / n,
        1e3 * stats.forward.as_secs_f64() / n,
        1e3 * stats.decode.as_secs_f64() / n,
        gpu.describe()
    );
    if stats.images == 0 {
        let why = match stats.skipped.first() {
            Some(e) => format!(" ({} skipped; the first: {e})", stats.skipped.len()),
            None => String::new(),
        };
        errln!("error: no image could be classified{why}");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
