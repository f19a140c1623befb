//! ONNX files of VGG graphs, read without Python: torchvision's exports, the ONNX model
//! zoo's vgg16/vgg19(-bn), and Keras' VGGs converted by tf2onnx (NHWC input, a transpose
//! before the flatten, MatMul and Add for the dense layers).
//!
//! The graph is walked in its node order (ONNX keeps nodes topologically sorted) as one
//! chain: each layer's data input must be the previous layer's output. Conv, batch norm,
//! ReLU, max pool and LRN nodes give the features; average pools the adaptive pool;
//! Flatten or Reshape, then Gemm or MatMul (+ Add) nodes the classifier. Nodes that only
//! compute shapes (Shape, Gather, Concat, ...) are passed over; anything else stops the
//! read with what was found. The initializers are mapped onto the model's layers in that
//! order and checked against them by shape, so the result has torchvision's tensor names
//! whatever the exporter called them.
//!
//! The messages are the ONNX schema's (onnx.proto, IR version 3 and later), declared here
//! for the fields a VGG graph uses; prost skips every other field.

use super::file_err;
use crate::error::Result;
use crate::model::card::Preset;
use crate::model::{Config, Feature, LrnParams, Model, Tensor, Weights, BN_EPS};
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, PartialEq, prost::Message)]
struct ModelProto {
    #[prost(int64, tag = "1")]
    ir_version: i64,
    #[prost(string, tag = "2")]
    producer_name: String,
    #[prost(message, optional, tag = "7")]
    graph: Option<GraphProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    node: Vec<NodeProto>,
    #[prost(message, repeated, tag = "5")]
    initializer: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    input: Vec<ValueInfoProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    output: Vec<String>,
    #[prost(string, tag = "3")]
    name: String,
    #[prost(string, tag = "4")]
    op_type: String,
    #[prost(message, repeated, tag = "5")]
    attribute: Vec<AttributeProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct AttributeProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(float, tag = "2")]
    f: f32,
    #[prost(int64, tag = "3")]
    i: i64,
    #[prost(bytes = "vec", tag = "4")]
    s: Vec<u8>,
    #[prost(float, repeated, tag = "7")]
    floats: Vec<f32>,
    #[prost(int64, repeated, tag = "8")]
    ints: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    data_type: i32,
    #[prost(float, repeated, tag = "4")]
    float_data: Vec<f32>,
    /// f16 and bf16 values, one per int32, when not in raw_data.
    #[prost(int32, repeated, tag = "5")]
    int32_data: Vec<i32>,
    #[prost(string, tag = "8")]
    name: String,
    #[prost(bytes = "vec", tag = "9")]
    raw_data: Vec<u8>,
    #[prost(double, repeated, tag = "10")]
    double_data: Vec<f64>,
    /// Where the values are when `data_location` is 1: `location` (a path relative to the
    /// model file), `offset` and `length` in bytes.
    #[prost(message, repeated, tag = "13")]
    external_data: Vec<StringStringEntry>,
    /// 1: the values are in another file.
    #[prost(int32, tag = "14")]
    data_location: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StringStringEntry {
    #[prost(string, tag = "1")]
    key: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ValueInfoProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    r#type: Option<TypeProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TypeProto {
    #[prost(message, optional, tag = "1")]
    tensor_type: Option<TypeTensor>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TypeTensor {
    #[prost(int32, tag = "1")]
    elem_type: i32,
    #[prost(message, optional, tag = "2")]
    shape: Option<ShapeProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ShapeProto {
    #[prost(message, repeated, tag = "1")]
    dim: Vec<DimProto>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct DimProto {
    /// 0 where the dimension is symbolic (dim_param) or absent.
    #[prost(int64, tag = "1")]
    dim_value: i64,
}

// TensorProto.DataType values.
const FLOAT: i32 = 1;
const FLOAT16: i32 = 10;
const DOUBLE: i32 = 11;
const BFLOAT16: i32 = 16;

/// What an ONNX file holds: the model its graph computes, the preprocessing its input
/// layout implies (NHWC is Keras', which expects Caffe's), and its weights under the
/// model's torchvision names.
pub struct OnnxModel {
    pub model: Model,
    pub preset: Preset,
    pub weights: Weights,
}

/// Whether these bytes look like an ONNX model rather than safetensors or a .pth: a
/// ModelProto starts with field 1 (ir_version, a small varint) or, from some writers,
/// another field; a safetensors file starts with its header length, which for these first
/// bytes would reach past the file.
pub fn is_onnx(bytes: &[u8]) -> bool {
    is_onnx_start(bytes, bytes.len() as u64)
}

/// `is_onnx` from a file's first bytes and its size.
pub fn is_onnx_start(head: &[u8], file_len: u64) -> bool {
    let Some(head) = head.get(..8) else {
        return false;
    };
    let len = u64::from_le_bytes(head.try_into().unwrap_or([0; 8]));
    head[0] == 0x08 && head[1] < 0x80 && len > file_len
}

/// Reads the VGG graph of an ONNX file.
pub fn read_onnx(bytes: &[u8], path: &Path) -> Result<OnnxModel> {
    let fail = |m: String| file_err(path, format!("not a readable VGG ONNX file: {m}"));
    let proto: ModelProto =
        prost::Message::decode(bytes).map_err(|e| fail(format!("not an ONNX model ({e})")))?;
    let mut graph = proto
        .graph
        .ok_or_else(|| fail("the model has no graph".into()))?;
    // torch.export's default (and the only form past protobuf's 2 GB) keeps the weights in
    // a file beside the graph.
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    for t in graph
        .initializer
        .iter_mut()
        .filter(|t| t.data_location == 1)
    {
        t.raw_data = external(t, dir.unwrap_or(Path::new(".")))
            .map_err(|m| file_err(path, format!("initializer '{}': {m}", t.name)))?;
        t.data_location = 0;
    }
    let mut m = walk(&graph).map_err(fail)?;
    // A graph that is no built-in VGG is named after its file.
    if m.model.name() == CUSTOM {
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            m.model = m.model.modified(|c| c.name = stem.to_string())?;
        }
    }
    Ok(m)
}

const CUSTOM: &str = "onnx";

type Fail = String;

/// A layer found in the graph, with its initializers.
enum Found {
    Conv {
        k: usize,
        w: Tensor,
        b: Option<Tensor>,
    },
    Bn([Tensor; 4]),
    Relu,
    Pool,
    Lrn(LrnParams),
    /// An average pool of kernel and stride (k, k), or a global one (None).
    AvgPool(Option<usize>),
    Flatten {
        /// The feature map was transposed to NHWC before flattening (Keras' order).
        nhwc: bool,
    },
    /// A dense layer: weight [out, in] and bias.
    Fc {
        w: Tensor,
        b: Option<Tensor>,
    },
    Softmax,
}

impl Found {
    fn what(&self) -> &'static str {
        match self {
            Found::Conv { .. } => "Conv",
            Found::Bn(_) => "BatchNormalization",
            Found::Relu => "Relu",
            Found::Pool => "MaxPool",
            Found::Lrn(_) => "LRN",
            Found::AvgPool(_) => "AveragePool",
            Found::Flatten { .. } => "Flatten",
            Found::Fc { .. } => "Gemm",
            Found::Softmax => "Softmax",
        }
    }
}

/// Ops that compute only shapes or constants for a Reshape; they never take the data.
const SHAPE_OPS: &[&str] = &[
    "Shape",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "Constant",
    "Cast",
    "Slice",
    "ConstantOfShape",
];

/// The initializers by name, with the TorchScript exporter's aliases: it stores identical
/// initializers once (every zero bias of a fresh model) and names the others through
/// Identity nodes.
fn initializers(g: &GraphProto) -> HashMap<&str, &TensorProto> {
    let mut inits: HashMap<&str, &TensorProto> =
        g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    for node in &g.node {
        if let ("Identity", [from], [to]) = (
            node.op_type.as_str(),
            node.input.as_slice(),
            node.output.as_slice(),
        ) {
            if let Some(t) = inits.get(from.as_str()).copied() {
                inits.insert(to.as_str(), t);
            }
        }
    }
    inits
}

/// One node of the chain with the lookups its parse needs: attributes with ONNX's
/// defaults, and its inputs as initializers.
struct Node<'g> {
    index: usize,
    node: &'g NodeProto,
    inits: &'g HashMap<&'g str, &'g TensorProto>,
}

impl Node<'_> {
    fn op(&self) -> &str {
        self.node.op_type.as_str()
    }

    /// "node 7 ('/features/features.0/Conv', Conv)", for the errors.
    fn at(&self) -> String {
        format!("node {} ('{}', {})", self.index, self.node.name, self.op())
    }

    fn attr(&self, name: &str) -> Option<&AttributeProto> {
        self.node.attribute.iter().find(|a| a.name == name)
    }

    fn ints(&self, name: &str) -> Vec<i64> {
        self.attr(name).map(|a| a.ints.clone()).unwrap_or_default()
    }

    fn int(&self, name: &str, default: i64) -> i64 {
        self.attr(name).map(|a| a.i).unwrap_or(default)
    }

    fn float(&self, name: &str, default: f32) -> f32 {
        self.attr(name).map(|a| a.f).unwrap_or(default)
    }

    fn text(&self, name: &str) -> String {
        self.attr(name)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
            .unwrap_or_default()
    }

    fn tensor(&self, name: &str) -> std::result::Result<Tensor, Fail> {
        let t = self.inits.get(name).ok_or_else(|| {
            format!("'{name}' is not an initializer (a weight computed in the graph)")
        })?;
        to_tensor(t)
    }

    /// Input `j`, an initializer.
    fn input(&self, j: usize) -> std::result::Result<Tensor, Fail> {
        let name = self
            .node
            .input
            .get(j)
            .ok_or_else(|| format!("{} lacks input {j}", self.at()))?;
        self.tensor(name)
    }

    /// Input `j`, an initializer, or None where it is absent or named "".
    fn optional(&self, j: usize) -> std::result::Result<Option<Tensor>, Fail> {
        self.node
            .input
            .get(j)
            .filter(|b| !b.is_empty())
            .map(|b| self.tensor(b))
            .transpose()
    }
}

/// What a node does to the chain: a layer, or nothing the engine runs (a dropout, a
/// transpose or bias folded into the layers around it).
enum Step {
    Layer(Found),
    Through,
}

/// The chain walked so far.
struct Chain {
    found: Vec<Found>,
    /// The data tensor the next layer must take.
    cur: String,
    nhwc_input: bool,
    /// A transpose to NHWC waiting for the flatten after it.
    nhwc_pending: bool,
}

fn walk(g: &GraphProto) -> std::result::Result<OnnxModel, Fail> {
    let inits = initializers(g);
    let input = g
        .input
        .iter()
        .find(|i| !inits.contains_key(i.name.as_str()))
        .ok_or("the graph has no data input")?;
    let dims: Vec<i64> = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
        .map(|s| s.dim.iter().map(|d| d.dim_value).collect())
        .unwrap_or_default();
    let mut chain = Chain {
        found: Vec::new(),
        cur: input.name.clone(),
        nhwc_input: false,
        nhwc_pending: false,
    };
    for (index, node) in g.node.iter().enumerate() {
        let node = Node {
            index,
            node,
            inits: &inits,
        };
        let op = node.op();
        let takes_data = node.node.input.contains(&chain.cur);
        if SHAPE_OPS.contains(&op) && (op == "Shape" || !takes_data) {
            continue;
        }
        if op == "Identity" && !takes_data {
            // An alias of an initializer (`initializers`).
            continue;
        }
        if node.node.input.first() != Some(&chain.cur) && !(op == "Add" && takes_data) {
            return Err(format!(
                "{} does not take the previous layer's output: the graph is not one chain of \
                 layers as a VGG is ({})",
                node.at(),
                so_far(&chain.found)
            ));
        }
        let out = node
            .node
            .output
            .first()
            .ok_or_else(|| format!("{} has no output", node.at()))?
            .clone();
        if let Step::Layer(f) = chain.step(&node)? {
            chain.found.push(f);
        }
        chain.cur = out;
    }
    build(chain.found, &dims, chain.nhwc_input)
}

impl Chain {
    fn step(&mut self, n: &Node) -> std::result::Result<Step, Fail> {
        let layer = match n.op() {
            "Conv" => conv(n)?,
            "BatchNormalization" => batch_norm(n)?,
            "Relu" => Found::Relu,
            "MaxPool" => max_pool(n)?,
            "LRN" => lrn(n)?,
            "GlobalAveragePool" => Found::AvgPool(None),
            "AveragePool" => average_pool(n)?,
            "Transpose" => return self.transpose(n),
            "Flatten" | "Reshape" => return self.flatten(n),
            "Gemm" => gemm(n)?,
            "MatMul" => Found::Fc {
                w: transpose(n.input(1)?, &n.at())?,
                b: None,
            },
            "Add" => return self.add(n),
            // Identity at inference.
            "Dropout" | "Identity" => return Ok(Step::Through),
            "Softmax" => Found::Softmax,
            _ => {
                return Err(format!(
                    "{} is not a layer of a VGG (Conv, BatchNormalization, Relu, MaxPool, LRN, \
                     AveragePool, Flatten, Gemm or MatMul and Add, Dropout, Softmax); {}",
                    n.at(),
                    so_far(&self.found)
                ))
            }
        };
        Ok(Step::Layer(layer))
    }

    /// A transpose from NHWC at the input (Keras' layout) or back to it before the
    /// flatten; no other.
    fn transpose(&mut self, n: &Node) -> std::result::Result<Step, Fail> {
        let perm = n.ints("perm");
        if self.found.is_empty() && perm == [0, 3, 1, 2] {
            self.nhwc_input = true;
        } else if perm == [0, 2, 3, 1] {
            self.nhwc_pending = true;
        } else {
            return Err(format!("{} transposes {perm:?}", n.at()));
        }
        Ok(Step::Through)
    }

    fn flatten(&mut self, n: &Node) -> std::result::Result<Step, Fail> {
        if n.op() == "Flatten" && n.int("axis", 1) != 1 {
            return Err(format!(
                "{} flattens from axis {}",
                n.at(),
                n.int("axis", 1)
            ));
        }
        if matches!(
            self.found.last(),
            Some(Found::Flatten { .. } | Found::Fc { .. })
        ) {
            // A reshape between dense layers (tf2onnx) changes nothing.
            return Ok(Step::Through);
        }
        let nhwc = std::mem::take(&mut self.nhwc_pending);
        Ok(Step::Layer(Found::Flatten { nhwc }))
    }

    /// An Add of an initializer to the data: the bias of the Conv or MatMul before it.
    fn add(&mut self, n: &Node) -> std::result::Result<Step, Fail> {
        let other = n
            .node
            .input
            .iter()
            .find(|x| **x != self.cur)
            .ok_or_else(|| format!("{} adds the data to itself", n.at()))?;
        let bias = n.tensor(other)?;
        match self.found.last_mut() {
            Some(Found::Fc { w, b } | Found::Conv { w, b, .. })
                if b.is_none() && bias.data.len() == w.shape[0] =>
            {
                *b = Some(new_tensor(vec![w.shape[0]], bias.data)?);
            }
            _ => {
                return Err(format!(
                    "{} adds {} values, not a bias of the layer before ({})",
                    n.at(),
                    bias.data.len(),
                    so_far(&self.found)
                ))
            }
        }
        Ok(Step::Through)
    }
}

fn conv(n: &Node) -> std::result::Result<Found, Fail> {
    let w = n.input(1)?;
    let b = n.optional(2)?;
    let k = *w.shape.get(2).unwrap_or(&0);
    let pad = match n.text("auto_pad").as_str() {
        "" | "NOTSET" => n.ints("pads"),
        "SAME_UPPER" | "SAME_LOWER" => vec![(k / 2) as i64; 4],
        "VALID" => vec![0; 4],
        other => return Err(format!("{}: auto_pad {other}", n.at())),
    };
    let pad = if pad.is_empty() { vec![0; 4] } else { pad };
    let strides = n.ints("strides");
    let dil = n.ints("dilations");
    let ok = w.shape.len() == 4
        && (k == 3 || k == 1)
        && w.shape[3] == k
        && pad.iter().all(|p| *p == (k / 2) as i64)
        && strides.iter().all(|s| *s == 1)
        && dil.iter().all(|d| *d == 1)
        && n.int("group", 1) == 1;
    if !ok {
        return Err(format!(
            "{} is a {:?} convolution with pads {pad:?}, strides {strides:?}, dilations \
             {dil:?}, group {}; a VGG has 3x3 (or 1x1) kernels, stride 1 and same padding",
            n.at(),
            w.shape,
            n.int("group", 1)
        ));
    }
    Ok(Found::Conv { k, w, b })
}

fn batch_norm(n: &Node) -> std::result::Result<Found, Fail> {
    let (s, b, m, mut v) = (n.input(1)?, n.input(2)?, n.input(3)?, n.input(4)?);
    // The engine's epsilon is PyTorch's; another (Keras' 1e-3) moves into the variance,
    // the same (x - mean) / sqrt(var + eps).
    let eps = n.float("epsilon", 1e-5);
    if eps != BN_EPS {
        v.data.iter_mut().for_each(|x| *x += eps - BN_EPS);
    }
    Ok(Found::Bn([s, b, m, v]))
}

fn max_pool(n: &Node) -> std::result::Result<Found, Fail> {
    let ok = n.ints("kernel_shape") == [2, 2]
        && n.ints("strides") == [2, 2]
        && n.ints("pads").iter().all(|p| *p == 0)
        && n.int("ceil_mode", 0) == 0
        && matches!(n.text("auto_pad").as_str(), "" | "NOTSET" | "VALID");
    if !ok {
        return Err(format!(
            "{} pools {:?} with strides {:?}; a VGG pools 2x2 with stride 2",
            n.at(),
            n.ints("kernel_shape"),
            n.ints("strides")
        ));
    }
    Ok(Found::Pool)
}

fn lrn(n: &Node) -> std::result::Result<Found, Fail> {
    let size = n.int("size", 0);
    if size % 2 == 0 {
        // ONNX centres an even window one channel later than PyTorch, whose convention
        // the LRN kernel follows; VGG's size is 5.
        return Err(format!(
            "{}: LRN of even size {size}, whose window ONNX places one channel off the \
             engine's (odd sizes agree)",
            n.at(),
        ));
    }
    Ok(Found::Lrn(LrnParams {
        size: usize::try_from(size).map_err(|_| format!("{}: size", n.at()))?,
        alpha: n.float("alpha", 1e-4),
        beta: n.float("beta", 0.75),
        k: n.float("bias", 1.0),
    }))
}

fn average_pool(n: &Node) -> std::result::Result<Found, Fail> {
    let k = n.ints("kernel_shape");
    // ONNX's strides default to 1, not to the kernel.
    let strides = match n.ints("strides") {
        s if s.is_empty() => vec![1, 1],
        s => s,
    };
    let ok = k.len() == 2
        && k[0] == k[1]
        && k[0] > 0
        && strides.iter().all(|s| *s == k[0])
        && n.ints("pads").iter().all(|p| *p == 0);
    if !ok {
        return Err(format!(
            "{} averages {k:?} with strides {strides:?}; only the adaptive pool's \
             kernel-equals-stride form is a VGG's",
            n.at()
        ));
    }
    Ok(Found::AvgPool(Some(k[0] as usize)))
}

fn gemm(n: &Node) -> std::result::Result<Found, Fail> {
    let alpha = n.float("alpha", 1.0);
    let beta = n.float("beta", 1.0);
    if alpha != 1.0 || beta != 1.0 || n.int("transA", 0) != 0 {
        return Err(format!(
            "{} is a Gemm with alpha {alpha}, beta {beta}, transA {}",
            n.at(),
            n.int("transA", 0)
        ));
    }
    let w = n.input(1)?;
    let w = if n.int("transB", 0) == 1 {
        w
    } else {
        transpose(w, &n.at())?
    };
    let b = n.optional(2)?;
    Ok(Found::Fc { w, b })
}

/// "found so far: 13 Conv, 5 MaxPool, ..." for the errors.
fn so_far(found: &[Found]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for f in found {
        match counts.iter_mut().find(|c| c.0 == f.what()) {
            Some(c) => c.1 += 1,
            None => counts.push((f.what(), 1)),
        }
    }
    if counts.is_empty() {
        return "no layer before it".into();
    }
    let list: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    format!("found before it: {}", list.join(", "))
}

/// The model of the layers found, and their weights under its names.
/// The layers of the chain in the engine's terms, before their sizes are checked.
struct Layers {
    features: Vec<Feature>,
    /// The conv (and batch norm) tensors in the model's order.
    params: Vec<Tensor>,
    bn: Option<bool>,
    lrn: Option<LrnParams>,
    avg: Option<Option<usize>>,
    /// Whether the flatten reads NHWC (Keras).
    nhwc: bool,
    fcs: Vec<(Tensor, Option<Tensor>)>,
    in_channels: Option<usize>,
}

/// Reads the chain as a VGG's: convolutions each with its ReLU (and batch norm on all or
/// none), pools and LRNs, at most one average pool, the flatten, dense layers with a ReLU
/// after each but the last, and an optional softmax at the end. Errors are bare messages.
fn layers(found: &[Found]) -> std::result::Result<Layers, String> {
    let mut l = Layers {
        features: Vec::new(),
        params: Vec::new(),
        bn: None,
        lrn: None,
        avg: None,
        nhwc: false,
        fcs: Vec::new(),
        in_channels: None,
    };
    let mut it = found.iter().peekable();
    let mut flattened = false;
    while let Some(f) = it.next() {
        match f {
            Found::Conv { k, w, b } if !flattened => {
                l.in_channels.get_or_insert(w.shape[1]);
                l.features.push(Feature::Conv {
                    out: w.shape[0],
                    k: *k,
                });
                l.params.push(w.clone());
                l.params.push(
                    b.clone()
                        .unwrap_or(new_tensor(vec![w.shape[0]], vec![0.0; w.shape[0]])?),
                );
                let has_bn = matches!(it.peek(), Some(Found::Bn(_)));
                if *l.bn.get_or_insert(has_bn) != has_bn {
                    return Err("batch norm follows some convolutions and not others".into());
                }
                if let Some(Found::Bn(t)) = it.peek() {
                    l.params.extend(t.iter().cloned());
                    it.next();
                }
                if !matches!(it.next(), Some(Found::Relu)) {
                    return Err("a convolution without the ReLU after it".into());
                }
            }
            Found::Pool if !flattened => l.features.push(Feature::Pool),
            Found::Lrn(p) if !flattened => {
                if l.lrn.replace(*p).is_some_and(|q| q != *p) {
                    return Err("LRN layers with different parameters".into());
                }
                l.features.push(Feature::Lrn);
            }
            Found::AvgPool(k) if !flattened && l.avg.is_none() => l.avg = Some(*k),
            Found::Flatten { nhwc } if !flattened => {
                flattened = true;
                l.nhwc = *nhwc;
            }
            Found::Fc { w, b } if flattened => {
                l.fcs.push((w.clone(), b.clone()));
                let last = !it.clone().any(|f| matches!(f, Found::Fc { .. }));
                let relu = matches!(it.peek(), Some(Found::Relu));
                if relu == last {
                    return Err(if last {
                        "a ReLU after the last dense layer".into()
                    } else {
                        "a hidden dense layer without the ReLU after it".into()
                    });
                }
                if relu {
                    it.next();
                }
            }
            Found::Softmax if it.peek().is_none() && !l.fcs.is_empty() => {}
            other => return Err(format!("a {} where a VGG has none", other.what())),
        }
    }
    Ok(l)
}

/// The input's height and width: the graph's, where they are fixed numbers, else 224;
/// its channels, where fixed, must be the first convolution's.
fn input_size(
    dims: &[i64],
    nhwc_input: bool,
    in_channels: usize,
) -> std::result::Result<(usize, usize), String> {
    let side = |i: usize| dims.get(i).copied().filter(|d| *d > 0).map(|d| d as usize);
    let (h, w) = if nhwc_input {
        (side(1), side(2))
    } else {
        (side(2), side(3))
    };
    let channels = if nhwc_input { side(3) } else { side(1) };
    if let Some(c) = channels.filter(|c| *c != in_channels) {
        return Err(format!(
            "the graph's input has {c} channels; its first convolution takes {in_channels}"
        ));
    }
    Ok((h.unwrap_or(224), w.unwrap_or(224)))
}

/// The average pool's output size: a global pool is 1x1, a kernel-equals-stride pool
/// divides the feature map where the features end.
fn avgpool_size(
    avg: Option<Option<usize>>,
    features: &[Feature],
    (h, w): (usize, usize),
) -> std::result::Result<Option<(usize, usize)>, String> {
    let pools = features.iter().filter(|f| **f == Feature::Pool).count() as u32;
    let (fh, fw) = (h >> pools, w >> pools);
    match avg {
        None => Ok(None),
        Some(None) => Ok(Some((1, 1))),
        Some(Some(k)) if fh % k == 0 && fw % k == 0 => Ok(Some((fh / k, fw / k))),
        Some(Some(k)) => Err(format!(
            "a {k}x{k} average pool over a {fh}x{fw} feature map"
        )),
    }
}

/// A model's weight tensors: names and shapes, in order.
type TensorNames = Vec<(String, Vec<usize>)>;

/// The tensors under the model's names, each checked against the shape the layers before
/// it make: the conv `params`, then the dense layers (a Keras flatten's columns reordered
/// to the engine's (c, h, w)).
fn named_weights(
    model: &Model,
    mut params: Vec<Tensor>,
    fcs: Vec<(Tensor, Option<Tensor>)>,
    nhwc: bool,
) -> std::result::Result<(Weights, TensorNames), String> {
    let last = model
        .layers()
        .iter()
        .find(|l| l.op == crate::model::Op::Flatten)
        .map(|l| l.input)
        .ok_or("no flatten")?;
    for (j, (wt, b)) in fcs.into_iter().enumerate() {
        let n = wt.shape[0];
        let wt = if j == 0 && nhwc {
            chw_columns(wt, last)?
        } else {
            wt
        };
        params.push(wt);
        params.push(b.unwrap_or(new_tensor(vec![n], vec![0.0; n])?));
    }
    let names: TensorNames = model.layers().iter().flat_map(|l| l.tensors()).collect();
    if names.len() != params.len() {
        return Err(format!(
            "{} weight tensors for the {} the model needs",
            params.len(),
            names.len()
        ));
    }
    let mut weights = Weights::new();
    for ((name, shape), t) in names.iter().zip(params) {
        if t.shape != *shape {
            return Err(format!(
                "the weight for {name} is {:?}, where the layers before it make it {shape:?}",
                t.shape
            ));
        }
        weights.insert(name, t);
    }
    Ok((weights, names))
}

fn build(
    found: Vec<Found>,
    dims: &[i64],
    nhwc_input: bool,
) -> std::result::Result<OnnxModel, Fail> {
    let shape_err = |m: String| format!("{m} ({})", so_far(&found));
    let l = layers(&found).map_err(shape_err)?;
    let in_channels = l
        .in_channels
        .ok_or_else(|| shape_err("no convolution".into()))?;
    let Some((last_fc, hidden_fcs)) = l.fcs.split_last() else {
        return Err(shape_err("no dense layer".into()));
    };
    let input = input_size(dims, nhwc_input, in_channels).map_err(shape_err)?;
    let avgpool = avgpool_size(l.avg, &l.features, input).map_err(shape_err)?;
    let config = Config {
        name: CUSTOM.into(),
        hidden: hidden_fcs.iter().map(|f| f.0.shape[0]).collect(),
        classes: last_fc.0.shape[0],
        features: l.features,
        batch_norm: l.bn.unwrap_or(false),
        in_channels,
        input,
        avgpool,
        dropout: 0.5,
        lrn: l.lrn.unwrap_or_default(),
    };
    let custom = Model::new(config).map_err(|e| shape_err(e.to_string()))?;
    let (weights, names) = named_weights(&custom, l.params, l.fcs, l.nhwc).map_err(shape_err)?;
    // A graph that is one of the built-in VGGs gets that model, and its name.
    let model = Model::matching(&names)
        .filter(|m| m.config().avgpool == avgpool && m.input_dims() == custom.input_dims())
        .unwrap_or(custom);
    let preset = if nhwc_input {
        Preset::Caffe
    } else {
        Preset::Torchvision
    };
    Ok(OnnxModel {
        model,
        preset,
        weights,
    })
}

fn new_tensor(shape: Vec<usize>, data: Vec<f32>) -> std::result::Result<Tensor, Fail> {
    Tensor::new(shape, data).map_err(|e| e.to_string())
}

/// A [k, n] matrix as [n, k].
fn transpose(t: Tensor, at: &str) -> std::result::Result<Tensor, Fail> {
    let [k, n] = t.shape[..] else {
        return Err(format!(
            "{at}: a {:?} weight where a matrix is needed",
            t.shape
        ));
    };
    let mut out = vec![0.0f32; t.data.len()];
    for i in 0..k {
        for j in 0..n {
            out[j * k + i] = t.data[i * n + j];
        }
    }
    new_tensor(vec![n, k], out)
}

/// A dense weight [n, h*w*c] whose columns are in (h, w, c) order, reordered to (c, h, w).
fn chw_columns(t: Tensor, [c, h, w]: [usize; 3]) -> std::result::Result<Tensor, Fail> {
    let k = c * h * w;
    if t.shape.len() != 2 || t.shape[1] != k {
        return Err(format!(
            "the first dense layer takes {:?} where the features give {c}x{h}x{w}",
            t.shape
        ));
    }
    let n = t.shape[0];
    let mut out = vec![0.0f32; t.data.len()];
    for o in 0..n {
        let (src, dst) = (&t.data[o * k..(o + 1) * k], &mut out[o * k..(o + 1) * k]);
        for ci in 0..c {
            for p in 0..h * w {
                dst[ci * h * w + p] = src[p * c + ci];
            }
        }
    }
    new_tensor(vec![n, k], out)
}

/// The bytes of an initializer stored outside the graph: `location` resolved in `dir` (the
/// model file's folder) and confined to it (no absolute path, no `..`, no symlink out),
/// exactly the bytes its dims and type take read at `offset`, within the file.
fn external(t: &TensorProto, dir: &Path) -> std::result::Result<Vec<u8>, Fail> {
    use std::io::{Read, Seek};
    let get = |k: &str| {
        t.external_data
            .iter()
            .find(|e| e.key == k)
            .map(|e| e.value.as_str())
    };
    let location = get("location").ok_or("stored externally without a location")?;
    let rel = Path::new(location);
    let inside = rel.components().all(|c| {
        matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if !inside || location.is_empty() {
        return Err(format!(
            "its external file '{location}' is not a path inside the model's folder"
        ));
    }
    let file = dir.join(rel);
    let real = std::fs::canonicalize(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let base = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !real.starts_with(&base) {
        return Err(format!(
            "its external file '{location}' links outside the model's folder"
        ));
    }
    let size = super::regular_size(&file).map_err(|e| e.to_string())?;
    let number = |k: &str| -> std::result::Result<Option<u64>, Fail> {
        get(k)
            .map(|v| v.parse::<u64>().map_err(|_| format!("external {k} '{v}'")))
            .transpose()
    };
    let width: u64 = match t.data_type {
        FLOAT => 4,
        FLOAT16 | BFLOAT16 => 2,
        DOUBLE => 8,
        other => return Err(format!("data type {other}")),
    };
    // What the dims take, overflow-checked, before anything is allocated.
    let want = t
        .dims
        .iter()
        .try_fold(width, |a, &d| a.checked_mul(u64::try_from(d).ok()?))
        .ok_or_else(|| format!("dims {:?}", t.dims))?;
    let offset = number("offset")?.unwrap_or(0);
    let length = number("length")?.unwrap_or(want);
    if length != want || offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(format!(
            "{} bytes at offset {offset} of {location} ({size} bytes) for dims {:?} ({want} \
             bytes)",
            length, t.dims
        ));
    }
    super::check_host_bytes(Some(want), "an external initializer").map_err(|e| e.to_string())?;
    let mut f = std::fs::File::open(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut out = vec![0u8; want as usize];
    f.seek(std::io::SeekFrom::Start(offset))
        .and_then(|_| f.read_exact(&mut out))
        .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(out)
}

/// An initializer's values as f32, checked against its dims.
fn to_tensor(t: &TensorProto) -> std::result::Result<Tensor, Fail> {
    let name = &t.name;
    let mut numel = 1usize;
    let mut shape = Vec::with_capacity(t.dims.len().min(8));
    for &d in &t.dims {
        let d = usize::try_from(d)
            .map_err(|_| format!("initializer '{name}' has dims {:?}", t.dims))?;
        numel = numel
            .checked_mul(d)
            .ok_or_else(|| format!("initializer '{name}' has dims {:?}", t.dims))?;
        shape.push(d);
    }
    let width = match t.data_type {
        FLOAT => 4,
        FLOAT16 | BFLOAT16 => 2,
        DOUBLE => 8,
        other => {
            return Err(format!(
                "initializer '{name}' has data type {other}; weights are float, float16, \
                 bfloat16 or double"
            ))
        }
    };
    let wrong = |have: usize| {
        format!(
            "initializer '{name}' holds {have} values for its dims {:?}",
            t.dims
        )
    };
    let data: Vec<f32> = if !t.raw_data.is_empty() {
        if t.raw_data.len() != numel.saturating_mul(width) {
            return Err(wrong(t.raw_data.len() / width));
        }
        let raw = &t.raw_data;
        match t.data_type {
            FLOAT => raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            FLOAT16 => raw
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            BFLOAT16 => raw
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            _ => raw
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
        }
    } else {
        let data: Vec<f32> = match t.data_type {
            FLOAT => t.float_data.clone(),
            FLOAT16 => t
                .int32_data
                .iter()
                .map(|v| half::f16::from_bits(*v as u16).to_f32())
                .collect(),
            BFLOAT16 => t
                .int32_data
                .iter()
                .map(|v| half::bf16::from_bits(*v as u16).to_f32())
                .collect(),
            _ => t.double_data.iter().map(|v| *v as f32).collect(),
        };
        if data.len() != numel {
            return Err(wrong(data.len()));
        }
        data
    };
    Tensor::new(shape, data).map_err(|e| format!("initializer '{name}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn init(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
        TensorProto {
            dims: dims.to_vec(),
            data_type: FLOAT,
            float_data: v.to_vec(),
            name: name.into(),
            ..Default::default()
        }
    }

    fn node(op: &str, inputs: &[&str], out: &str, attrs: Vec<AttributeProto>) -> NodeProto {
        NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.into()],
            name: out.into(),
            op_type: op.into(),
            attribute: attrs,
        }
    }

    fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            ints: v.to_vec(),
            ..Default::default()
        }
    }

    /// A 1x4x4 input, one 3x3 conv to 2 channels, a pool, a dense layer to 3 classes.
    fn tiny(extra: Option<NodeProto>) -> Vec<u8> {
        let conv = node(
            "Conv",
            &["x", "w", "b"],
            "c",
            vec![ints("pads", &[1, 1, 1, 1]), ints("kernel_shape", &[3, 3])],
        );
        let mut nodes = vec![
            conv,
            node("Relu", &["c"], "r", vec![]),
            node(
                "MaxPool",
                &["r"],
                "p",
                vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
            ),
            node("Flatten", &["p"], "f", vec![]),
            node(
                "Gemm",
                &["f", "fw", "fb"],
                "y",
                vec![AttributeProto {
                    name: "transB".into(),
                    i: 1,
                    ..Default::default()
                }],
            ),
        ];
        if let Some(n) = extra {
            nodes.insert(2, n);
        }
        let input = ValueInfoProto {
            name: "x".into(),
            r#type: Some(TypeProto {
                tensor_type: Some(TypeTensor {
                    elem_type: FLOAT,
                    shape: Some(ShapeProto {
                        dim: [1, 1, 4, 4]
                            .iter()
                            .map(|&d| DimProto { dim_value: d })
                            .collect(),
                    }),
                }),
            }),
        };
        let seq = |n: usize| (0..n).map(|i| i as f32 * 0.01).collect::<Vec<_>>();
        let m = ModelProto {
            ir_version: 8,
            producer_name: "test".into(),
            graph: Some(GraphProto {
                node: nodes,
                initializer: vec![
                    init("w", &[2, 1, 3, 3], &seq(18)),
                    init("b", &[2], &[0.5, -0.5]),
                    init("fw", &[3, 8], &seq(24)),
                    init("fb", &[3], &[1.0, 2.0, 3.0]),
                ],
                input: vec![input],
            }),
        };
        m.encode_to_vec()
    }

    #[test]
    fn a_small_graph_maps_to_torchvision_names() {
        let bytes = tiny(None);
        assert!(is_onnx(&bytes));
        let m = read_onnx(&bytes, Path::new("t.onnx")).unwrap();
        assert_eq!(m.model.input_dims(), [1, 4, 4]);
        assert_eq!(m.model.classes(), 3);
        assert_eq!(m.weights.get("features.0.bias").unwrap().data, [0.5, -0.5]);
        assert_eq!(m.weights.get("classifier.0.weight").unwrap().shape, [3, 8]);
        assert_eq!(m.preset, Preset::Torchvision);
    }

    #[test]
    fn other_graphs_are_refused_with_what_was_found() {
        let add = node("Sigmoid", &["c"], "s", vec![]);
        let e = read_onnx(&tiny(Some(add)), Path::new("t.onnx"))
            .err()
            .unwrap();
        let e = e.to_string();
        assert!(e.contains("Sigmoid") && e.contains("1 Conv"), "{e}");
        // Every truncation of a valid file is an error or a smaller valid graph, never a panic.
        let bytes = tiny(None);
        for n in 0..bytes.len() {
            let _ = read_onnx(&bytes[..n], Path::new("t.onnx"));
        }
        // Dims that do not match the values.
        let mut m = ModelProto::decode(&bytes[..]).unwrap();
        m.graph.as_mut().unwrap().initializer[0].dims = vec![2, 1, 3, 4];
        let e = read_onnx(&m.encode_to_vec(), Path::new("t.onnx"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("holds 18 values"), "{e}");
        m.graph.as_mut().unwrap().initializer[0].dims = vec![i64::MAX, i64::MAX];
        assert!(read_onnx(&m.encode_to_vec(), Path::new("t.onnx")).is_err());
        // An input of 5 channels before a convolution that takes 1.
        let mut m = ModelProto::decode(&bytes[..]).unwrap();
        let input = &mut m.graph.as_mut().unwrap().input[0];
        let shape = input.r#type.as_mut().unwrap().tensor_type.as_mut().unwrap();
        shape.shape.as_mut().unwrap().dim[1].dim_value = 5;
        let e = read_onnx(&m.encode_to_vec(), Path::new("t.onnx"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("input has 5 channels"), "{e}");
    }

    /// The TorchScript exporter's form: a shared initializer named through Identity nodes.
    #[test]
    fn identity_nodes_over_initializers_are_aliases() {
        let bytes = tiny(None);
        let mut m = ModelProto::decode(&bytes[..]).unwrap();
        let g = m.graph.as_mut().unwrap();
        g.node
            .insert(0, node("Identity", &["b"], "b_alias", vec![]));
        g.node[1].input[2] = "b_alias".into();
        let read = read_onnx(&m.encode_to_vec(), Path::new("t.onnx")).unwrap();
        let want = read_onnx(&bytes, Path::new("t.onnx")).unwrap();
        assert_eq!(read.weights, want.weights);
    }

    /// torch.export's form: weights in a file beside the graph, read at their offsets and
    /// confined to the model's folder.
    #[test]
    fn external_data_is_read_beside_the_model_and_nowhere_else() {
        let dir = std::env::temp_dir().join(format!("vgg-onnx-ext-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bytes = tiny(None);
        let want = read_onnx(&bytes, Path::new("t.onnx")).unwrap();
        // "w"'s 18 floats at offset 8 of t.onnx.data, behind 8 bytes of something else.
        let mut m = ModelProto::decode(&bytes[..]).unwrap();
        let w = &mut m.graph.as_mut().unwrap().initializer[0];
        let mut data = vec![0xAAu8; 8];
        data.extend(w.float_data.iter().flat_map(|v| v.to_le_bytes()));
        std::fs::write(dir.join("t.onnx.data"), &data).unwrap();
        w.float_data.clear();
        w.data_location = 1;
        let entry = |k: &str, v: &str| StringStringEntry {
            key: k.into(),
            value: v.into(),
        };
        let with = |entries: Vec<StringStringEntry>| {
            let mut m = m.clone();
            m.graph.as_mut().unwrap().initializer[0].external_data = entries;
            read_onnx(&m.encode_to_vec(), &dir.join("t.onnx"))
        };
        let read = with(vec![
            entry("location", "t.onnx.data"),
            entry("offset", "8"),
            entry("length", "72"),
        ])
        .unwrap();
        assert_eq!(read.weights, want.weights);
        // Outside the folder, by path or by link; past the file; a length the dims do not
        // take: each refused, naming the initializer.
        std::os::unix::fs::symlink("/etc/hostname", dir.join("out.data")).unwrap();
        let refused = [
            (
                vec![entry("location", "../t.onnx.data")],
                "inside the model's folder",
            ),
            (
                vec![entry("location", "/etc/hostname")],
                "inside the model's folder",
            ),
            (vec![entry("location", "out.data")], "links outside"),
            (vec![entry("location", "missing.data")], "missing.data"),
            (
                vec![entry("location", "t.onnx.data"), entry("offset", "16")],
                "72 bytes at offset 16",
            ),
            (
                vec![entry("location", "t.onnx.data"), entry("length", "4")],
                "4 bytes at offset 0",
            ),
            (vec![], "without a location"),
        ];
        for (entries, words) in refused {
            let e = with(entries).err().unwrap().to_string();
            assert!(e.contains("initializer 'w'") && e.contains(words), "{e}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    /// ONNX's own defaults: AveragePool's strides are 1 when absent, and an even LRN window
    /// sits one channel off PyTorch's.
    #[test]
    fn onnx_defaults_are_read_as_onnx_defines_them() {
        let avg = node(
            "AveragePool",
            &["p"],
            "a",
            vec![ints("kernel_shape", &[2, 2])],
        );
        let mut m = ModelProto::decode(&tiny(None)[..]).unwrap();
        let g = m.graph.as_mut().unwrap();
        g.node.insert(3, avg);
        g.node[4].input[0] = "a".into();
        let e = read_onnx(&m.encode_to_vec(), Path::new("t.onnx"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("strides [1, 1]"), "{e}");
        let mut lrn = node("LRN", &["r"], "l", vec![]);
        lrn.attribute.push(AttributeProto {
            name: "size".into(),
            i: 4,
            ..Default::default()
        });
        let mut m = ModelProto::decode(&tiny(None)[..]).unwrap();
        let g = m.graph.as_mut().unwrap();
        g.node.insert(2, lrn);
        g.node[3].input[0] = "l".into();
        let e = read_onnx(&m.encode_to_vec(), Path::new("t.onnx"))
            .err()
            .unwrap();
        assert!(e.to_string().contains("even size 4"), "{e}");
    }

    #[test]
    fn mutated_exports_never_panic() {
        // torch.onnx.export's file, with bytes overwritten at seeded random places.
        let good = include_bytes!("../../tests/fixtures/tiny_a.onnx");
        assert!(read_onnx(good, Path::new("t.onnx")).is_ok());
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut refused = 0;
        for _ in 0..300 {
            let mut b = good.to_vec();
            for _ in 0..1 + next() % 4 {
                // Mostly the graph's structure, which sits before and between the weights.
                let at = (next() % b.len() as u64) as usize;
                b[at] = next() as u8;
            }
            refused += read_onnx(&b, Path::new("t.onnx")).is_err() as usize;
        }
        eprintln!("{refused} of 300 mutants refused");
    }
}
