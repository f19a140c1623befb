//! `vgg eval`: the paper's evaluation protocol on a labelled folder, one table row per
//! method and scale set (see `vgg_wgpu::eval`).

use super::{AdapterArgs, ModelArgs};
use std::path::PathBuf;
use std::process::ExitCode;
use vgg_wgpu::eval::{Method, Report};
use vgg_wgpu::model::card::Preprocessing;
use vgg_wgpu::model::{Card, Model, Preset};
use vgg_wgpu::{Error, Gpu, Network};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Weights, as for infer: a safetensors file this engine wrote (its card gives the
    /// model, the preprocessing, the class names and the scales it was trained at), a
    /// PyTorch .pth or an ONNX graph of a VGG
    #[arg(long, short)]
    pub weights: PathBuf,
    /// The labelled images: a folder with one subdirectory per class, named as the model's
    /// classes (or by class number)
    #[arg(long)]
    pub data: PathBuf,
    /// The test scales Q of the multi-scale rows, comma-separated [default: from the
    /// training scales the weights record: SMIN, (SMIN+SMAX)/2, SMAX for a jittered S, and
    /// S-d, S, S+d for a fixed S, d the paper's 32 scaled to the input (32 at 224); for
    /// weights without them, S is the preprocessing's resize]
    #[arg(long, value_name = "Q,...")]
    pub scales: Option<String>,
    /// The scale of the single-scale rows [default: S, or (SMIN+SMAX)/2 for a jittered S]
    #[arg(long, value_name = "Q")]
    pub single: Option<usize>,
    /// Methods, comma-separated: center (one center crop), dense (the FC layers as
    /// convolutions over the whole image and its mirror), multi-crop (a GRIDxGRID spread
    /// of crops and their mirrors), dense+multi-crop (the two averaged) [default: all, the
    /// dense ones only where the model has its average pool]
    #[arg(long, value_name = "METHOD,...")]
    pub methods: Option<String>,
    /// Crops per axis of multi-crop: the paper's 5 gives 5x5x2 = 50 crops per scale
    #[arg(long, default_value_t = 5, value_parser = super::count_parser(vgg_wgpu::eval::MAX_GRID))]
    pub grid: usize,
    /// Views per forward pass (crops, or images and their mirrors for dense)
    #[arg(long, short, default_value_t = 32, value_parser = super::count_parser(4096))]
    pub batch_size: usize,
    /// Print the table as JSON on stdout
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Print the table as Markdown on stdout
    #[arg(long)]
    pub markdown: bool,
    /// Storage of weights and activations on the GPU: f32 or f16, as for infer
    #[arg(long, default_value = "f32", value_parser = ["f32", "f16"])]
    pub precision: String,
    /// Refuse images declaring more pixels than this, or resizing to more, before decoding
    /// them
    #[arg(long, value_name = "PIXELS", default_value_t = vgg_wgpu::io::image::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    #[command(flatten)]
    pub gpu: AdapterArgs,
}

/// The largest test scale: a 3-channel image stored at 1024x1024 takes 12 MB.
const MAX_TEST_SCALE: usize = 1024;

impl Args {
    pub fn run(self) -> vgg_wgpu::Result<ExitCode> {
        use vgg_wgpu::io;
        let opened = io::weights::Opened::open(&self.weights)?;
        let card = opened.card().cloned();
        let pre = card.as_ref().map_or(
            Preprocessing {
                preset: Preset::Torchvision,
                resize: 256,
                crop: 224,
            },
            |c| c.preprocessing,
        );
        let model = match &card {
            Some(c) => self.model.against_card(&c.model()?, &self.weights)?,
            None => self.model.build()?,
        };
        let [c, h, w] = model.input_dims();
        let (scales, single) = self.scales(card.as_ref(), &pre, h.max(w))?;
        let qmax = scales.iter().copied().max().unwrap_or(single);
        let methods = self.methods(&model, &scales, qmax)?;
        let opts = vgg_wgpu::eval::Options {
            scales: scales.clone(),
            single,
            grid: self.grid,
            batch: self.batch_size,
            methods,
        };
        // Stored once at the largest scale (the center square), rescaled per scale.
        let stored = Preprocessing {
            resize: qmax as u32,
            crop: qmax as u32,
            ..pre
        };
        let (mut data, names) =
            io::datasets::labelled_folder(&self.data, c, &stored, self.max_pixels)?;
        let classes = match &card {
            Some(card) => card.classes.clone(),
            None => (0..model.classes()).map(|i| format!("class {i}")).collect(),
        };
        let index = class_indices(&names, &classes).map_err(|m| io::file_err(&self.data, m))?;
        for l in data.labels.iter_mut() {
            *l = index[*l as usize] as u32;
        }
        data.classes = model.classes();
        let weights = opened.load(&model)?;
        let gpu = Gpu::new(&self.gpu.options())?;
        let net_opts = vgg_wgpu::NetworkOptions {
            precision: super::precision_named(&self.precision)
                .unwrap_or(vgg_wgpu::gpu::Precision::F32),
            ..Default::default()
        };
        let mut net = Network::with_options(&gpu, &model, &weights, net_opts)?;
        drop(weights);
        errln!(
            "evaluating {} on {} ({} images, {} classes) at scales {:?} on {}",
            model.name(),
            self.data.display(),
            data.len(),
            names.len(),
            scales,
            gpu.describe()
        );
        let bar = std::cell::RefCell::new(None::<super::progress::Progress>);
        let mut shown = String::new();
        let report = vgg_wgpu::eval::evaluate(&mut net, &data, &opts, |what, done, total| {
            if shown != what {
                shown = what.to_string();
                let old = bar.replace(Some(super::progress::Progress::bar(
                    total as u64,
                    what,
                    false,
                )));
                if let Some(b) = old {
                    b.finish();
                }
            }
            if let Some(b) = bar.borrow().as_ref() {
                b.set_position(done as u64);
            }
        })?;
        if let Some(b) = bar.take() {
            b.finish();
        }
        if self.json {
            outln!("{:#}", json(&report, &model, &gpu, &self.data))?;
        } else {
            let table = table(&report, self.markdown);
            out!("{table}")?;
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The multi-scale set and the single scale: the options', else from the card.
    fn scales(
        &self,
        card: Option<&Card>,
        pre: &Preprocessing,
        side: usize,
    ) -> vgg_wgpu::Result<(Vec<usize>, usize)> {
        let (default_set, default_single) = default_scales(card, pre, side);
        let set = match &self.scales {
            Some(spec) => parse_scales(spec)?,
            None => default_set,
        };
        let single = self.single.unwrap_or(match set.contains(&default_single) {
            true => default_single,
            // Scales given without the default single one: their middle.
            false => set[set.len() / 2],
        });
        Ok((set, single))
    }

    /// The methods asked for, or all that the model can run at these scales (images
    /// stored square at `qmax`).
    fn methods(
        &self,
        model: &Model,
        scales: &[usize],
        qmax: usize,
    ) -> vgg_wgpu::Result<Vec<Method>> {
        if let Some(spec) = &self.methods {
            // Dense evaluation's limits are checked by the evaluation, naming the scale.
            return spec.split(',').map(Method::parse).collect();
        }
        let c = model.config().in_channels;
        let unfit = scales
            .iter()
            .find_map(|q| vgg_wgpu::eval::dense_fits(model, (c, qmax, qmax), *q).err());
        if let Some(e) = &unfit {
            errln!("note: the dense methods are left out ({e}); give --scales to include them");
        }
        Ok(Method::ALL
            .into_iter()
            .filter(|m| unfit.is_none() || !m.uses_dense())
            .collect())
    }
}

/// The paper's test scales for a card: {SMIN, mid, SMAX} around the jittered mid, or
/// {S-d, S, S+d} around a fixed S (d = 32 at a 224 input, scaled with the input, at least
/// 1), the set cut to scales of at least the input side.
fn default_scales(card: Option<&Card>, pre: &Preprocessing, side: usize) -> (Vec<usize>, usize) {
    let (set, single) = match card.and_then(|c| c.scale.as_ref()) {
        Some(s) if s.min < s.max => {
            let (min, max) = (s.min as usize, s.max as usize);
            let mid = vgg_wgpu::io::scale::test_scale(min, max);
            (vec![min, mid, max], mid)
        }
        other => {
            let s = other
                .map_or(pre.resize as usize, |s| s.min as usize)
                .max(side);
            let d = ((32 * side) as f64 / 224.0).round().max(1.0) as usize;
            (vec![s.saturating_sub(d), s, s + d], s)
        }
    };
    let mut set: Vec<usize> = set.into_iter().filter(|q| *q >= side).collect();
    set.dedup();
    (set, single)
}

fn parse_scales(spec: &str) -> vgg_wgpu::Result<Vec<usize>> {
    let bad = |m: String| Error::InvalidOption {
        option: "--scales".into(),
        message: m,
    };
    let mut set = Vec::new();
    for part in spec.split(',') {
        match part.trim().parse::<usize>() {
            Ok(q) if (1..=MAX_TEST_SCALE).contains(&q) => {
                if !set.contains(&q) {
                    set.push(q)
                }
            }
            _ => {
                return Err(bad(format!(
                    "'{part}' is not a scale from 1 to {MAX_TEST_SCALE}"
                )))
            }
        }
    }
    if set.len() > 16 {
        return Err(bad(format!("{} scales; at most 16", set.len())));
    }
    Ok(set)
}

/// The model's class index of each folder class: by name, else by number.
fn class_indices(folder: &[String], model: &[String]) -> Result<Vec<usize>, String> {
    folder
        .iter()
        .map(|name| {
            model
                .iter()
                .position(|c| c == name)
                .or_else(|| name.parse::<usize>().ok().filter(|i| *i < model.len()))
                .ok_or_else(|| {
                    let shown: Vec<&str> = model.iter().take(10).map(String::as_str).collect();
                    format!(
                        "has a class folder '{name}' that is none of the model's {} classes \
                         ({}{}) nor a class number",
                        model.len(),
                        shown.join(", "),
                        if model.len() > 10 { ", ..." } else { "" }
                    )
                })
        })
        .collect()
}

fn scales_text(s: &[usize]) -> String {
    s.iter()
        .map(|q| q.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The rows as aligned text or Markdown.
fn table(r: &Report, markdown: bool) -> String {
    let head = [
        "method".to_string(),
        "scales".into(),
        "top-1 error".into(),
        format!("top-{} error", r.top_k),
        "images/s".into(),
    ];
    let rows: Vec<[String; 5]> = r
        .rows
        .iter()
        .map(|row| {
            [
                row.method.name().to_string(),
                scales_text(&row.scales),
                format!("{:.2}%", 100.0 * row.top1_error),
                format!("{:.2}%", 100.0 * row.top5_error),
                format!("{:.1}", row.images_per_second),
            ]
        })
        .collect();
    let mut out = String::new();
    if markdown {
        out += &format!("| {} |\n", head.join(" | "));
        out += &format!("|{}\n", "---|".repeat(head.len()));
        for row in &rows {
            out += &format!("| {} |\n", row.join(" | "));
        }
        return out;
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([head[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| match i {
                0 | 1 => format!("{c:<w$}"),
                _ => format!("{c:>w$}"),
            })
            .collect();
        format!("{}\n", parts.join("  ").trim_end())
    };
    out += &line(&head);
    for row in &rows {
        out += &line(row);
    }
    out
}

fn json(r: &Report, model: &Model, gpu: &Gpu, data: &std::path::Path) -> serde_json::Value {
    let rows: Vec<_> = r
        .rows
        .iter()
        .map(|row| {
            serde_json::json!({
                "method": row.method.name(),
                "scales": row.scales,
                "top1_error": row.top1_error,
                "top5_error": row.top5_error,
                "seconds": row.seconds,
                "images_per_second": row.images_per_second,
            })
        })
        .collect();
    serde_json::json!({
        "model": model.name(),
        "adapter": gpu.describe(),
        "data": data.display().to_string(),
        "images": r.images,
        "top_k": r.top_k,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scales_follow_the_paper() {
        let m = Model::vgg11();
        let pre = Preprocessing {
            preset: Preset::Unit,
            resize: 256,
            crop: 224,
        };
        let mut card = Card::new(&m, pre, (0..1000).map(|i| i.to_string()).collect()).unwrap();
        assert_eq!(
            default_scales(Some(&card), &pre, 224),
            (vec![224, 256, 288], 256)
        );
        card.scale = Some(vgg_wgpu::model::card::TrainingScale {
            min: 256,
            max: 512,
            colour: None,
        });
        assert_eq!(
            default_scales(Some(&card), &pre, 224),
            (vec![256, 384, 512], 384)
        );
        card.scale = Some(vgg_wgpu::model::card::TrainingScale {
            min: 384,
            max: 384,
            colour: None,
        });
        assert_eq!(
            default_scales(Some(&card), &pre, 224),
            (vec![352, 384, 416], 384)
        );
        // At a 32 input the step is 32 * 32 / 224 = 5; scales below the input are cut.
        card.scale = Some(vgg_wgpu::model::card::TrainingScale {
            min: 34,
            max: 34,
            colour: None,
        });
        assert_eq!(default_scales(Some(&card), &pre, 32), (vec![34, 39], 34));
        assert_eq!(default_scales(None, &pre, 224), (vec![224, 256, 288], 256));
    }

    #[test]
    fn classes_map_by_name_or_number() {
        let model = vec!["cat".to_string(), "dog".into(), "owl".into()];
        let folder = vec!["2".to_string(), "cat".into(), "dog".into()];
        assert_eq!(class_indices(&folder, &model), Ok(vec![2, 0, 1]));
        let e = class_indices(&["fox".to_string()], &model).unwrap_err();
        assert!(e.contains("'fox'") && e.contains("cat, dog, owl"), "{e}");
        assert!(parse_scales("32,x").is_err());
        assert_eq!(parse_scales("40, 32,40").unwrap(), vec![40, 32]);
    }
}
