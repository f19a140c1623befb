//! The VGG family as data: the paper's Table 1 (configs A, A-LRN, B, C, D, E), torchvision's
//! batch-norm variants, and custom networks built from the same pieces. A [`Model`] is a
//! validated layer list with every layer's output shape, parameter count and MACs; the
//! executor (`graph`) and the CPU reference (`reference::network`) both read it.

pub mod card;
pub mod summary;
mod weights;

pub use card::{Card, Preset};
pub use summary::Summary;
pub use weights::{normal_sample, Init, Tensor, Weights};

use crate::error::{Error, Result};

/// One entry of a feature-extractor configuration.
/// The paper's (and torchvision-style) constants: size 5, alpha 1e-4, beta 0.75, k 2.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LrnParams {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub k: f32,
}

impl Default for LrnParams {
    fn default() -> Self {
        LrnParams {
            size: 5,
            alpha: 1e-4,
            beta: 0.75,
            k: 2.0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Feature {
    /// Convolution with `out` channels and a `k`x`k` kernel (3, or 1 in config C), stride
    /// 1, padding k/2, followed by ReLU (and batch norm before it in the _bn models).
    Conv { out: usize, k: usize },
    /// Local response normalisation (config A-LRN), after the ReLU it follows.
    Lrn,
    /// 2x2 max pooling, stride 2.
    Pool,
}

/// Everything that defines a network. Built-in configs come from the named constructors of
/// [`Model`]; custom ones from [`Config::parse_features`] or by filling the fields.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Config {
    pub name: String,
    pub features: Vec<Feature>,
    /// Conv, BatchNorm, ReLU in place of conv, ReLU (torchvision's `_bn` models).
    pub batch_norm: bool,
    pub in_channels: usize,
    /// Input height and width.
    pub input: (usize, usize),
    /// torchvision's `AdaptiveAvgPool2d((7, 7))` before the classifier; `None` flattens the
    /// last feature map directly (small custom networks).
    pub avgpool: Option<(usize, usize)>,
    /// Widths of the hidden fully connected layers (4096, 4096 in VGG).
    pub hidden: Vec<usize>,
    pub classes: usize,
    /// Dropout probability after each hidden FC layer (identity at inference).
    pub dropout: f32,
    pub lrn: LrnParams,
}

/// What a layer computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Conv { c_in: usize, c_out: usize, k: usize },
    BatchNorm { c: usize },
    Relu,
    Lrn(LrnParams),
    MaxPool,
    AdaptiveAvgPool { h: usize, w: usize },
    Flatten,
    Linear { k: usize, n: usize },
    Dropout { p: f32 },
}

/// Per-image shape of an activation: channels, height, width ([f, 1, 1] once flattened).
pub type Dims = [usize; 3];

/// One layer of a model, in torchvision's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// The paper's naming: conv3_2, relu3_2, bn3_2, lrn1, pool3, avgpool, flatten, fc6,
    /// relu6, drop6, ...
    pub name: String,
    /// torchvision's module path (features.12, classifier.3), the prefix of its weights.
    pub key: String,
    pub op: Op,
    pub input: Dims,
    pub output: Dims,
}

/// Batch-norm epsilon, PyTorch's default.
pub const BN_EPS: f32 = 1e-5;

impl Layer {
    /// Trainable parameters (batch norm's running statistics are buffers, not parameters,
    /// as PyTorch counts them).
    pub fn params(&self) -> u64 {
        match self.op {
            Op::Conv { c_in, c_out, k } => (c_out * c_in * k * k + c_out) as u64,
            Op::BatchNorm { c } => 2 * c as u64,
            Op::Linear { k, n } => (n * k + n) as u64,
            _ => 0,
        }
    }

    /// Multiply-accumulates per image (conv and FC; the element-wise layers are not counted,
    /// as in the published totals).
    pub fn macs(&self) -> u64 {
        let [_, h, w] = self.output;
        match self.op {
            Op::Conv { c_in, c_out, k } => (h * w * c_out * c_in * k * k) as u64,
            Op::Linear { k, n } => (k * n) as u64,
            _ => 0,
        }
    }

    /// Whether the output is a flat feature vector (flatten and the classifier after it).
    pub fn flat(&self) -> bool {
        self.key == "flatten" || self.key.starts_with("classifier")
    }

    /// Per-image output shape as PyTorch reports it: [c, h, w], or `[f]` once flat.
    pub fn shape(&self) -> Vec<usize> {
        if self.flat() {
            vec![self.output[0]]
        } else {
            self.output.to_vec()
        }
    }

    /// Elements of the output per image.
    pub fn output_len(&self) -> usize {
        self.output.iter().product()
    }

    /// The weight tensors this layer owns: (torchvision name, shape).
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let k = &self.key;
        match self.op {
            Op::Conv { c_in, c_out, k: ks } => vec![
                (format!("{k}.weight"), vec![c_out, c_in, ks, ks]),
                (format!("{k}.bias"), vec![c_out]),
            ],
            Op::BatchNorm { c } => ["weight", "bias", "running_mean", "running_var"]
                .iter()
                .map(|s| (format!("{k}.{s}"), vec![c]))
                .collect(),
            Op::Linear { k: kk, n } => vec![
                (format!("{k}.weight"), vec![n, kk]),
                (format!("{k}.bias"), vec![n]),
            ],
            _ => Vec::new(),
        }
    }
}

/// A validated network: its config and its layers with shapes.
#[derive(Clone, Debug, PartialEq)]
pub struct Model {
    config: Config,
    layers: Vec<Layer>,
}

fn invalid(message: String) -> Error {
    Error::InvalidOption {
        option: "model".into(),
        message,
    }
}

/// The names `Model::by_name` knows, with a description each.
pub const NAMES: &[(&str, &str)] = &[
    ("vgg11", "config A, 11 weight layers"),
    (
        "vgg11_lrn",
        "config A-LRN: A with local response normalisation after conv1_1",
    ),
    ("vgg13", "config B, 13 weight layers"),
    (
        "vgg16_c",
        "config C: B plus a 1x1 conv ending blocks 3, 4 and 5",
    ),
    ("vgg16", "config D, 16 weight layers"),
    ("vgg19", "config E, 19 weight layers"),
    (
        "vgg11_bn",
        "vgg11 with batch norm (torchvision's layer order)",
    ),
    ("vgg13_bn", "vgg13 with batch norm"),
    ("vgg16_bn", "vgg16 with batch norm"),
    ("vgg19_bn", "vgg19 with batch norm"),
];

impl Config {
    /// A config with torchvision's defaults (3x224x224 input, 7x7 average pool, two hidden
    /// layers of 4096, 1000 classes, dropout 0.5) around the given features.
    pub fn new(name: &str, features: Vec<Feature>) -> Config {
        Config {
            name: name.into(),
            features,
            batch_norm: false,
            in_channels: 3,
            input: (224, 224),
            avgpool: Some((7, 7)),
            hidden: vec![4096, 4096],
            classes: 1000,
            dropout: 0.5,
            lrn: LrnParams::default(),
        }
    }

    /// Parses a feature list: comma-separated entries, each a channel count (3x3 conv),
    /// `N:1` or `N:3` (conv with that kernel size), `M` (max pool) or `L` (LRN).
    /// Example: config C's block 3 is `256,256,256:1,M`.
    pub fn parse_features(spec: &str) -> Result<Vec<Feature>> {
        let mut out = Vec::new();
        for tok in spec.split(',').map(str::trim) {
            let f = match tok {
                "M" | "m" => Feature::Pool,
                "L" | "l" | "LRN" | "lrn" => Feature::Lrn,
                _ => {
                    let (c, k) = tok.split_once(':').unwrap_or((tok, "3"));
                    let out = c.parse::<usize>().ok().filter(|&c| c > 0);
                    let k = k.parse::<usize>().ok().filter(|k| *k == 1 || *k == 3);
                    match (out, k) {
                        (Some(out), Some(k)) => Feature::Conv { out, k },
                        _ => {
                            return Err(invalid(format!(
                                "'{tok}' in '{spec}' is not a layer: use a channel count \
                                 (3x3 conv), N:1 (1x1 conv), M (max pool) or L (LRN)"
                            )))
                        }
                    }
                }
            };
            out.push(f);
        }
        Ok(out)
    }
}

fn convs(spec: &[usize]) -> Vec<Feature> {
    // 0 marks a pool in the compact tables below.
    spec.iter()
        .map(|&c| match c {
            0 => Feature::Pool,
            c => Feature::Conv { out: c, k: 3 },
        })
        .collect()
}

const A: &[usize] = &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0];
const B: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0,
];
const D: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0,
];
const E: &[usize] = &[
    64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0,
];

impl Model {
    /// Validates a config and derives its layers.
    pub fn new(config: Config) -> Result<Model> {
        let layers = build_layers(&config)?;
        Ok(Model { config, layers })
    }

    fn builtin(config: Config) -> Model {
        // The built-in tables are valid by construction; a failure here is a bug in them.
        Model::new(config).expect("built-in VGG config is valid")
    }

    /// Config A.
    pub fn vgg11() -> Model {
        Model::builtin(Config::new("vgg11", convs(A)))
    }
    /// Config A-LRN: LRN after the first conv's ReLU.
    pub fn vgg11_lrn() -> Model {
        let mut f = convs(A);
        f.insert(1, Feature::Lrn);
        Model::builtin(Config::new("vgg11_lrn", f))
    }
    /// Config B.
    pub fn vgg13() -> Model {
        Model::builtin(Config::new("vgg13", convs(B)))
    }
    /// Config C: D with the third conv of blocks 3, 4 and 5 a 1x1 convolution.
    pub fn vgg16_c() -> Model {
        let mut f = convs(D);
        for i in [8, 12, 16] {
            if let Feature::Conv { out, .. } = f[i] {
                f[i] = Feature::Conv { out, k: 1 };
            }
        }
        Model::builtin(Config::new("vgg16_c", f))
    }
    /// Config D.
    pub fn vgg16() -> Model {
        Model::builtin(Config::new("vgg16", convs(D)))
    }
    /// Config E.
    pub fn vgg19() -> Model {
        Model::builtin(Config::new("vgg19", convs(E)))
    }

    /// A built-in model by name (see [`NAMES`]); `_bn` adds batch norm to A, B, D or E.
    pub fn by_name(name: &str) -> Result<Model> {
        let lower = name.to_ascii_lowercase();
        let (base, bn) = match lower.strip_suffix("_bn") {
            Some(b) if ["vgg11", "vgg13", "vgg16", "vgg19"].contains(&b) => (b, true),
            _ => (lower.as_str(), false),
        };
        let m = match base {
            "vgg11" | "a" => Model::vgg11(),
            "vgg11_lrn" | "a-lrn" | "a_lrn" => Model::vgg11_lrn(),
            "vgg13" | "b" => Model::vgg13(),
            "vgg16_c" | "c" => Model::vgg16_c(),
            "vgg16" | "d" => Model::vgg16(),
            "vgg19" | "e" => Model::vgg19(),
            _ => {
                return Err(invalid(format!(
                    "unknown model '{name}'; known: {} (or a layer list such as 32,M,64,M)",
                    NAMES.iter().map(|n| n.0).collect::<Vec<_>>().join(", ")
                )))
            }
        };
        if bn {
            let mut c = m.config;
            c.batch_norm = true;
            c.name = lower.clone();
            return Model::new(c);
        }
        Ok(m)
    }

    /// A built-in name, or a feature list (see [`Config::parse_features`]) with torchvision's
    /// defaults for everything else.
    pub fn parse(spec: &str) -> Result<Model> {
        Model::parse_as(spec, |_| {})
    }

    /// [`Model::parse`] with `adjust` applied to a layer list's configuration before it is
    /// checked: a list fit for an 8x8 input may not be for the default 224x224.
    pub fn parse_as(spec: &str, adjust: impl FnOnce(&mut Config)) -> Result<Model> {
        if spec.contains(',') || spec.chars().all(|c| c.is_ascii_digit()) {
            let mut c = Config::new("custom", Config::parse_features(spec)?);
            adjust(&mut c);
            return Model::new(c);
        }
        Model::by_name(spec)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn name(&self) -> &str {
        &self.config.name
    }
    /// The built-in model (at 224x224, 3 channels) whose tensors are exactly these names
    /// and shapes, with the classifier's widths and classes taken from them: how a
    /// torchvision state dict, which records no architecture, is recognised.
    pub fn matching(tensors: &[(String, Vec<usize>)]) -> Option<Model> {
        let mut fcs: Vec<(usize, usize)> = tensors
            .iter()
            .filter_map(|(n, s)| {
                let i = n.strip_prefix("classifier.")?.strip_suffix(".weight")?;
                Some((i.parse().ok()?, *s.first().filter(|_| s.len() == 2)?))
            })
            .collect();
        fcs.sort_unstable();
        let (&(_, classes), hidden) = fcs.split_last()?;
        let hidden: Vec<usize> = hidden.iter().map(|f| f.1).collect();
        let mut want: Vec<(String, Vec<usize>)> = tensors.to_vec();
        want.sort();
        NAMES.iter().find_map(|(name, _)| {
            let m = Model::by_name(name)
                .and_then(|m| m.with_classes(classes))
                .and_then(|m| m.with_hidden(&hidden))
                .ok()?;
            let mut have: Vec<(String, Vec<usize>)> =
                m.layers().iter().flat_map(|l| l.tensors()).collect();
            have.sort();
            (have == want).then_some(m)
        })
    }

    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }
    /// Per-image input shape [c, h, w].
    pub fn input_dims(&self) -> Dims {
        [
            self.config.in_channels,
            self.config.input.0,
            self.config.input.1,
        ]
    }
    pub fn classes(&self) -> usize {
        self.config.classes
    }
    /// The layer with this name, or the error listing what names exist.
    pub fn layer_index(&self, name: &str) -> Result<usize> {
        self.layers
            .iter()
            .position(|l| l.name == name || l.key == name)
            .ok_or_else(|| {
                invalid(format!(
                    "{} has no layer '{name}'; its layers are {}",
                    self.name(),
                    self.layers
                        .iter()
                        .map(|l| l.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }
    pub fn params(&self) -> u64 {
        self.layers.iter().map(Layer::params).sum()
    }
    /// Multiply-accumulates per image.
    pub fn macs(&self) -> u64 {
        self.layers.iter().map(Layer::macs).sum()
    }

    /// Returns a copy with the config changed by `f`, validated again.
    pub fn modified(&self, f: impl FnOnce(&mut Config)) -> Result<Model> {
        let mut c = self.config.clone();
        f(&mut c);
        Model::new(c)
    }
    pub fn with_classes(&self, classes: usize) -> Result<Model> {
        self.modified(|c| c.classes = classes)
    }
    /// Input channels, height and width.
    pub fn with_input(&self, channels: usize, h: usize, w: usize) -> Result<Model> {
        self.modified(|c| {
            c.in_channels = channels;
            c.input = (h, w);
        })
    }
    pub fn with_hidden(&self, hidden: &[usize]) -> Result<Model> {
        self.modified(|c| c.hidden = hidden.to_vec())
    }
    pub fn with_avgpool(&self, avgpool: Option<(usize, usize)>) -> Result<Model> {
        self.modified(|c| c.avgpool = avgpool)
    }
    pub fn with_batch_norm(&self, bn: bool) -> Result<Model> {
        self.modified(|c| c.batch_norm = bn)
    }
    /// Scales every conv's channel count by `factor` (rounded, at least 1).
    pub fn with_width(&self, factor: f64) -> Result<Model> {
        if !(factor.is_finite() && factor > 0.0) {
            return Err(invalid(format!("width factor {factor} must be positive")));
        }
        self.modified(|c| {
            for f in &mut c.features {
                if let Feature::Conv { out, .. } = f {
                    *out = ((*out as f64 * factor).round() as usize).max(1);
                }
            }
        })
    }
}

/// The most channels, classes or FC width a model may have: far past any VGG (4096), and
/// small enough that no shape, parameter or MAC count computed from them overflows.
pub const MAX_CHANNELS: usize = 1 << 20;
/// The largest input side.
pub const MAX_SIDE: usize = 1 << 16;
/// The most elements one image's tensor may hold: the kernels index with 32-bit integers.
pub const MAX_TENSOR: usize = u32::MAX as usize;

fn build_layers(c: &Config) -> Result<Vec<Layer>> {
    let (h0, w0) = c.input;
    if c.in_channels == 0 || h0 == 0 || w0 == 0 {
        return Err(invalid(format!(
            "input {}x{}x{} has an empty dimension",
            c.in_channels, h0, w0
        )));
    }
    let widths = c.features.iter().filter_map(|f| match f {
        Feature::Conv { out, .. } => Some(*out),
        _ => None,
    });
    let widest = widths
        .chain(c.hidden.iter().copied())
        .chain([c.classes, c.in_channels])
        .max()
        .unwrap_or(0);
    if widest > MAX_CHANNELS || h0 > MAX_SIDE || w0 > MAX_SIDE {
        return Err(invalid(format!(
            "a width of {widest} or an input of {h0}x{w0} is past what the engine holds \
             ({MAX_CHANNELS} channels, classes or features; {MAX_SIDE} pixels a side)"
        )));
    }
    if c.classes == 0 || c.hidden.contains(&0) {
        return Err(invalid(
            "classes and hidden widths must be at least 1".into(),
        ));
    }
    if !(0.0..1.0).contains(&c.dropout) {
        return Err(invalid(format!("dropout {} must be in [0, 1)", c.dropout)));
    }
    if !c.features.iter().any(|f| matches!(f, Feature::Conv { .. })) {
        return Err(invalid("a model needs at least one convolution".into()));
    }
    let mut s = Stack {
        layers: Vec::new(),
        cur: [c.in_channels, h0, w0],
    };
    let next_block = s.features(c)?;
    s.classifier(c, next_block)?;
    if let Some(l) = s
        .layers
        .iter()
        .find(|l| l.output_len() as u64 > MAX_TENSOR as u64)
    {
        return Err(invalid(format!(
            "{}'s output {:?} holds {} elements per image, past the {MAX_TENSOR} the kernels \
             index",
            l.name,
            l.output,
            l.output_len()
        )));
    }
    Ok(s.layers)
}

/// The layers so far and the shape the next one takes.
struct Stack {
    layers: Vec<Layer>,
    cur: Dims,
}

impl Stack {
    fn push(&mut self, name: String, key: String, op: Op, output: Dims) {
        self.layers.push(Layer {
            name,
            key,
            op,
            input: self.cur,
            output,
        });
        self.cur = output;
    }

    /// The convolutional part, named by block (conv3_2, pool3) and keyed as torchvision's
    /// `features.N`; returns the number the first FC layer takes (fc6 after five blocks).
    fn features(&mut self, c: &Config) -> Result<usize> {
        let (h0, w0) = c.input;
        let (mut block, mut conv_in_block) = (1, 0);
        for f in &c.features {
            let key = |s: &Stack| format!("features.{}", s.layers.len());
            match *f {
                Feature::Conv { out, k } => {
                    conv_in_block += 1;
                    let id = format!("{block}_{conv_in_block}");
                    let [c_in, h, w] = self.cur;
                    let o = [out, h, w];
                    let op = Op::Conv {
                        c_in,
                        c_out: out,
                        k,
                    };
                    self.push(format!("conv{id}"), key(self), op, o);
                    if c.batch_norm {
                        let op = Op::BatchNorm { c: out };
                        self.push(format!("bn{id}"), key(self), op, o);
                    }
                    self.push(format!("relu{id}"), key(self), Op::Relu, o);
                }
                Feature::Lrn => {
                    let cur = self.cur;
                    self.push(format!("lrn{block}"), key(self), Op::Lrn(c.lrn), cur);
                }
                Feature::Pool => {
                    let [ch, h, w] = self.cur;
                    if h < 2 || w < 2 {
                        return Err(invalid(format!(
                            "pool{block} would pool a {h}x{w} map; the input {h0}x{w0} is too \
                             small for this model's pools"
                        )));
                    }
                    let out = [ch, h / 2, w / 2];
                    self.push(format!("pool{block}"), key(self), Op::MaxPool, out);
                    block += 1;
                    conv_in_block = 0;
                }
            }
        }
        // FC layers continue the block numbering.
        Ok(if conv_in_block == 0 { block } else { block + 1 })
    }

    /// The average pool (if any), flatten, the hidden FC layers with their ReLU and
    /// dropout, and the last FC layer, keyed as torchvision's `classifier.N`.
    fn classifier(&mut self, c: &Config, fc0: usize) -> Result<()> {
        if let Some((ah, aw)) = c.avgpool {
            if ah == 0 || aw == 0 || ah > MAX_SIDE || aw > MAX_SIDE {
                return Err(invalid(format!(
                    "average pool output {ah}x{aw} must be from 1x1 to {MAX_SIDE}x{MAX_SIDE}"
                )));
            }
            let out = [self.cur[0], ah, aw];
            let op = Op::AdaptiveAvgPool { h: ah, w: aw };
            self.push("avgpool".into(), "avgpool".into(), op, out);
        }
        let flat = [self.cur.iter().product(), 1, 1];
        self.push("flatten".into(), "flatten".into(), Op::Flatten, flat);
        let key = |i: usize| format!("classifier.{i}");
        for (i, &width) in c.hidden.iter().enumerate() {
            let (k, n) = (self.cur[0], fc0 + i);
            let o = [width, 1, 1];
            self.push(format!("fc{n}"), key(3 * i), Op::Linear { k, n: width }, o);
            self.push(format!("relu{n}"), key(3 * i + 1), Op::Relu, o);
            let op = Op::Dropout { p: c.dropout };
            self.push(format!("drop{n}"), key(3 * i + 2), op, o);
        }
        let (k, name) = (self.cur[0], format!("fc{}", fc0 + c.hidden.len()));
        let op = Op::Linear { k, n: c.classes };
        self.push(name, key(3 * c.hidden.len()), op, [c.classes, 1, 1]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_totals() {
        // torchvision's published parameter counts and GMACs (its "GFLOPS" column).
        let cases: &[(Model, u64, &str)] = &[
            (Model::vgg11(), 132_863_336, "7.61"),
            (Model::vgg13(), 133_047_848, "11.31"),
            (Model::vgg16_c(), 133_638_952, "11.77"),
            (Model::vgg16(), 138_357_544, "15.47"),
            (Model::vgg19(), 143_667_240, "19.63"),
        ];
        for (m, params, gmac) in cases {
            assert_eq!(m.params(), *params, "{}", m.name());
            assert_eq!(
                format!("{:.2}", m.macs() as f64 / 1e9),
                *gmac,
                "{}",
                m.name()
            );
        }
        let bn = Model::by_name("vgg16_bn").unwrap();
        assert_eq!(bn.params(), 138_365_992);
        assert_eq!(bn.macs(), Model::vgg16().macs());
        // LRN has no parameters: A-LRN counts as A.
        assert_eq!(Model::vgg11_lrn().params(), Model::vgg11().params());
    }

    #[test]
    fn torchvision_keys() {
        let m = Model::by_name("vgg16_bn").unwrap();
        let keys: Vec<_> = m.layers().iter().map(|l| l.key.as_str()).collect();
        assert_eq!(
            &keys[..4],
            ["features.0", "features.1", "features.2", "features.3"]
        );
        let fc: Vec<_> = m
            .layers()
            .iter()
            .filter(|l| matches!(l.op, Op::Linear { .. }))
            .map(|l| (l.key.as_str(), l.name.as_str()))
            .collect();
        assert_eq!(
            fc,
            [
                ("classifier.0", "fc6"),
                ("classifier.3", "fc7"),
                ("classifier.6", "fc8")
            ]
        );
        // vgg16_bn's last feature layer is features.43, the pool.
        let pool5 = &m.layers()[m.layer_index("pool5").unwrap()];
        assert_eq!(pool5.key, "features.43");
        assert_eq!(pool5.output, [512, 7, 7]);
    }

    #[test]
    fn custom_and_errors() {
        let m = Model::parse("8,M,16:1,L,M")
            .and_then(|m| m.with_input(1, 28, 28))
            .and_then(|m| m.with_avgpool(None))
            .and_then(|m| m.with_hidden(&[32]))
            .and_then(|m| m.with_classes(10))
            .unwrap();
        let last = m.layers().last().unwrap();
        assert_eq!((last.name.as_str(), last.output), ("fc4", [10, 1, 1]));
        assert_eq!(
            m.layers()[m.layer_index("flatten").unwrap()].output,
            [16 * 49, 1, 1]
        );
        assert!(Model::parse("8,X").is_err());
        assert!(Model::parse("vgg17").is_err());
        assert!(Model::vgg16().with_input(3, 16, 16).is_err());
        assert!(Model::vgg16().with_classes(0).is_err());
        let half = Model::vgg16().with_width(0.5).unwrap();
        assert_eq!(half.layers()[0].output[0], 32);
    }
}

#[cfg(test)]
mod matching_tests {
    use super::*;

    fn tensors(m: &Model) -> Vec<(String, Vec<usize>)> {
        m.layers().iter().flat_map(|l| l.tensors()).collect()
    }

    #[test]
    fn a_state_dict_of_a_built_in_vgg_is_recognised() {
        for name in ["vgg11", "vgg16", "vgg19_bn", "vgg16_c"] {
            let m = Model::by_name(name).unwrap();
            let found = Model::matching(&tensors(&m)).unwrap();
            assert_eq!(found.config(), m.config(), "{name}");
        }
        // Another head: 5 classes behind 512-wide hidden layers.
        let m = Model::vgg13()
            .with_classes(5)
            .and_then(|m| m.with_hidden(&[512, 512]))
            .unwrap();
        assert_eq!(Model::matching(&tensors(&m)).unwrap().config(), m.config());
        // One tensor missing, or one of another shape: no match.
        let mut t = tensors(&Model::vgg16());
        t.pop();
        assert!(Model::matching(&t).is_none());
        let mut t = tensors(&Model::vgg16());
        t[0].1 = vec![32, 3, 3, 3];
        assert!(Model::matching(&t).is_none());
    }
}
