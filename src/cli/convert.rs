//! `vgg convert`: weights from a PyTorch `torch.save` file, an ONNX graph (or safetensors) to a
//! safetensors file that records its model card, so `vgg infer` and `vgg train --init`
//! need no model flags for it.

use super::ModelArgs;
use std::path::PathBuf;
use std::process::ExitCode;
use vgg_wgpu::model::card::{Card, Preprocessing, Preset};
use vgg_wgpu::{io, Error};

#[derive(clap::Args)]
pub struct Args {
    /// The weights to read: a PyTorch file as torch.save writes it (zip or legacy format,
    /// a state dict in torchvision's VGG names, f32, f16 or bf16), an ONNX graph of a VGG
    /// (its layers give the model; an NHWC input, Keras' layout, gives Caffe's
    /// preprocessing), or safetensors
    // Not named `input`: clap would take it for the model's `--input HxW`.
    #[arg(value_name = "INPUT")]
    pub source: PathBuf,
    /// The safetensors file to write (f32, with the model card in its metadata)
    pub output: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    /// The preprocessing to record: torchvision, caffe or unit [default: the input's card,
    /// else torchvision]
    #[arg(long, value_name = "PRESET")]
    pub preprocess: Option<String>,
    /// Class names, one per line [default: the input's card, else ImageNet's for 1000
    /// classes, else "class N"]
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Replace OUTPUT if it exists
    #[arg(long)]
    pub force: bool,
}

impl Args {
    pub fn run(self) -> vgg_wgpu::Result<ExitCode> {
        if self.output.exists() && !self.force {
            return Err(Error::InvalidOption {
                option: "OUTPUT".into(),
                message: format!(
                    "{} exists; pass --force to replace it",
                    self.output.display()
                ),
            });
        }
        // A torchvision state dict of a built-in VGG is recognised from its tensors; any
        // other needs --model and the flags that describe it.
        let opened = io::weights::Opened::open(&self.source)?;
        let card = opened.card().cloned();
        let model = match (&card, self.model.names_model()) {
            (Some(c), _) => self.model.against_card(&c.model()?, &self.source)?,
            (None, true) => self.model.build()?,
            (None, false) => {
                return Err(Error::InvalidOption {
                    option: "--model".into(),
                    message: format!(
                        "{}'s tensors are not those of a built-in VGG; say which model they \
                         are with --model (and --classes, --hidden, --bn as needed)",
                        self.source.display()
                    ),
                })
            }
        };
        let weights = opened.load(&model)?;
        let recorded = card.as_ref().map(|c| c.preprocessing);
        let preset = match &self.preprocess {
            Some(p) => Preset::parse(p)?,
            None => recorded.map_or(Preset::Torchvision, |r| r.preset),
        };
        let side = model.config().input.0 as u32;
        let pre = Preprocessing {
            preset,
            resize: recorded.map_or(side * 8 / 7, |r| r.resize),
            crop: recorded.map_or(side, |r| r.crop),
        };
        let classes = match (&self.labels, &card) {
            (Some(p), _) => io::labels::from_file(p, model.classes())?,
            (None, Some(c)) if c.classes.len() == model.classes() => c.classes.clone(),
            _ if model.classes() == 1000 => io::labels::imagenet(),
            _ => (0..model.classes()).map(|i| format!("class {i}")).collect(),
        };
        let card = Card::new(&model, pre, classes)?;
        weights.save_with(&self.output, Some(&card))?;
        let params: usize = weights.iter().map(|(_, t)| t.data.len()).sum();
        outln!(
            "wrote {}: {} ({} parameters, {} classes, {} preprocessing)",
            self.output.display(),
            model.name(),
            params,
            model.classes(),
            preset.name()
        )?;
        Ok(ExitCode::SUCCESS)
    }
}
