//! The executor: a model becomes a graph of fused GPU nodes over tensor ids; a planner
//! places every tensor in a few reusable buffers and splits the batch wherever one image's
//! activations times the batch would not fit a storage binding; `Network` uploads the
//! weights once and runs a forward pass as one command encoder and one queue submit.
//!
//! Splitting: a run of consecutive nodes whose tensors at the full batch would exceed the
//! binding limit forms a *chunked stage*, executed over groups of images in turn (VGG16's
//! first block at batch 16 on a 128 MiB-binding adapter runs as two groups of 8). Tensors
//! that cross a stage boundary are held at the full batch and filled or read with buffer
//! copies, which need only 4-byte alignment, so no shader has to know about windows. The
//! classifier after a chunked feature stage still runs once over the whole batch, so the
//! large FC weights are read once per forward.

pub mod choice;
pub mod lower;
mod network;
pub mod plan;

pub use network::{weight_bytes, Network, NetworkOptions};
pub use plan::{Limits, Plan, Stage};

use crate::error::{Error, Result};
use crate::model::{Dims, Model, Op};

pub type TensorId = usize;

/// A tensor of the graph: its per-image shape and the layer that names it.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    pub dims: Dims,
    /// Bytes per element on the GPU (4 for f32, 2 for f16).
    pub elem_bytes: u64,
}

impl TensorInfo {
    /// Bytes of one image's worth of this tensor on the GPU.
    pub fn image_bytes(&self) -> u64 {
        self.dims.iter().product::<usize>() as u64 * self.elem_bytes
    }
}

/// What a node computes. Layer indices point into the model's layer list.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NodeOp {
    /// Convolution with its batch norm folded in and its ReLU fused where present; `k` is
    /// its kernel size (its channels are its tensors'), so a lowering needs no model
    /// lookup to know its shape.
    Conv {
        layer: usize,
        k: usize,
        bn: Option<usize>,
        relu: bool,
    },
    /// Training's batch norm (batch statistics; inference folds it into the conv), with
    /// the ReLU after it fused where present.
    BatchNorm {
        layer: usize,
        relu: bool,
    },
    /// Training's dropout with drop probability `p` (a view of its input in inference).
    Dropout {
        layer: usize,
        p: f32,
    },
    /// A ReLU the planner could not fuse (its input was asked for).
    Relu,
    Lrn {
        layer: usize,
    },
    MaxPool,
    AvgPool {
        h: usize,
        w: usize,
    },
    /// A fully connected layer over `k` inputs per row (its outputs are its tensor's), with
    /// its ReLU fused where present.
    Linear {
        layer: usize,
        k: usize,
        relu: bool,
    },
    Softmax,
    /// Windows of the last feature map as rows, for FC layers run as convolutions.
    Im2col {
        kh: usize,
        kw: usize,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub op: NodeOp,
    pub input: TensorId,
    pub output: TensorId,
}

/// "conv1_1+bn1_1+relu1_1" for a fused node.
fn fused_name(layers: &[crate::model::Layer]) -> String {
    layers
        .iter()
        .map(|l| l.name.as_str())
        .collect::<Vec<_>>()
        .join("+")
}

/// The name under which `Network::run` returns class probabilities (softmax of the last
/// layer), computed on the GPU.
pub const PROB: &str = "prob";

/// What a graph is built for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Infer,
    /// The paper's dense evaluation (see [`Graph::build_dense`]).
    Dense,
    /// A training forward: batch norm on batch statistics, dropout where it drops.
    Train {
        dropout: bool,
    },
}

/// Nodes in execution order over tensors; tensor 0 is the input.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    pub tensors: Vec<TensorInfo>,
    pub nodes: Vec<Node>,
    /// The requested outputs: (tensor, per-image shape as the layer reports it, name).
    pub outputs: Vec<(TensorId, Vec<usize>, String)>,
}

impl Graph {
    /// Builds the nodes needed for the named outputs (layer names, torchvision keys or
    /// [`PROB`]), fusing conv + batch norm + ReLU and FC + ReLU except where an output
    /// needs the tensor in between. Dropout and flatten are views of their input; so is an
    /// average pool that maps a map to its own size.
    pub fn build(model: &Model, outputs: &[&str]) -> Result<Graph> {
        Graph::build_with(model, outputs, Mode::Infer)
    }

    /// The forward of a training step, up to the last layer's scores: the same fused nodes
    /// as inference (conv + ReLU, FC + ReLU), except that batch norm is a node of its own
    /// (with its ReLU) computing batch statistics, and dropout, where `dropout` is on and a
    /// layer drops, is a node whose mask the backward pass regenerates.
    pub fn build_train(model: &Model, dropout: bool) -> Result<Graph> {
        let last = &model.layers()[model.layers().len() - 1].name;
        Graph::build_with(model, &[last], Mode::Train { dropout })
    }

    /// The paper's dense evaluation: the FC layers run as convolutions over every position
    /// of the last feature map (fc6 as a window the size of the average pool's output, then
    /// 1x1), so an image larger than the training size yields a map of class scores. The
    /// output is the last layer's scores, [positions, classes] per image.
    pub fn build_dense(model: &Model) -> Result<Graph> {
        let last = &model.layers()[model.layers().len() - 1].name;
        Graph::build_with(model, &[last], Mode::Dense)
    }

    fn build_with(model: &Model, outputs: &[&str], mode: Mode) -> Result<Graph> {
        let layers = model.layers();
        let n_layers = layers.len();
        let wanted = outputs
            .iter()
            .map(|name| match *name {
                PROB => Ok(n_layers),
                _ => model.layer_index(name),
            })
            .collect::<Result<Vec<_>>>()?;
        if wanted.is_empty() {
            return Err(Error::InvalidOption {
                option: "outputs".into(),
                message: "ask for at least one output".into(),
            });
        }
        let last = wanted.iter().copied().max().unwrap_or(0).min(n_layers - 1);
        let mut b = Builder {
            layers,
            last,
            wanted: &wanted,
            mode,
            g: Graph {
                tensors: vec![TensorInfo {
                    name: "input".into(),
                    dims: model.input_dims(),
                    elem_bytes: 4,
                }],
                nodes: Vec::new(),
                outputs: Vec::new(),
            },
            at: vec![None; n_layers + 1],
            cur: 0,
            window: None,
            positions: 1,
        };
        let mut i = 0;
        while i <= last {
            i = b.step(i)?;
        }
        let Builder {
            mut g,
            mut at,
            cur,
            positions,
            ..
        } = b;
        if wanted.contains(&n_layers) {
            let logits = at[n_layers - 1].unwrap_or(cur);
            let out = layers[n_layers - 1].output;
            at[n_layers] = Some(g.node(PROB, NodeOp::Softmax, logits, out));
        }
        for (&w, name) in wanted.iter().zip(outputs) {
            let mut shape = layers[w.min(n_layers - 1)].shape();
            if mode == Mode::Dense {
                shape.insert(0, positions);
            }
            let t = at[w]
                .ok_or_else(|| Error::Shape(format!("layer {name} has no tensor in the graph")))?;
            g.outputs.push((t, shape, name.to_string()));
        }
        Ok(g)
    }

    fn node(&mut self, name: &str, op: NodeOp, input: TensorId, out: Dims) -> TensorId {
        let id = self.tensors.len();
        // A fused node's tensor is the output of its last layer.
        let tensor = name.rsplit('+').next().unwrap_or(name);
        self.tensors.push(TensorInfo {
            name: tensor.into(),
            dims: out,
            elem_bytes: 4,
        });
        self.nodes.push(Node {
            name: name.into(),
            op,
            input,
            output: id,
        });
        id
    }

    /// The same graph with tensors stored as `precision` on the GPU.
    pub fn with_precision(mut self, precision: crate::gpu::Precision) -> Graph {
        for t in &mut self.tensors {
            t.elem_bytes = precision.bytes() as u64;
        }
        self
    }

    /// The node that writes each tensor (None for the input).
    pub fn producers(&self) -> Vec<Option<usize>> {
        let mut p = vec![None; self.tensors.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            p[n.output] = Some(i);
        }
        p
    }
}

/// The graph under construction, layer by layer.
struct Builder<'m> {
    layers: &'m [crate::model::Layer],
    /// The last layer any output needs.
    last: usize,
    wanted: &'m [usize],
    mode: Mode,
    g: Graph,
    /// The tensor holding each layer's output, where one exists.
    at: Vec<Option<TensorId>>,
    cur: TensorId,
    /// Dense evaluation: the window fc6 covers, and the positions per image after it.
    window: Option<(usize, usize)>,
    positions: usize,
}

impl Builder<'_> {
    /// Whether layer `j` is a ReLU that fuses into its producer (nobody asked for the
    /// tensor before it).
    fn relu_after(&self, j: usize) -> bool {
        j < self.layers.len()
            && j <= self.last
            && self.layers[j].op == Op::Relu
            && !self.wanted.contains(&(j - 1))
    }

    /// A node for layers `first ..= end`, and the ReLU after them where it fuses (`op`
    /// gets whether it did); returns the next layer.
    fn fused(&mut self, first: usize, end: usize, op: impl Fn(bool) -> NodeOp) -> usize {
        let relu = self.relu_after(end + 1);
        let last_fused = if relu { end + 1 } else { end };
        let mut out = self.layers[last_fused].output;
        if let NodeOp::Linear { .. } = op(relu) {
            out = [self.positions * out[0], 1, 1];
        }
        let name = fused_name(&self.layers[first..=last_fused]);
        self.cur = self.g.node(&name, op(relu), self.cur, out);
        self.at[last_fused] = Some(self.cur);
        last_fused + 1
    }

    /// Lowers layer `i` (and what fuses with it); returns the next layer to lower.
    fn step(&mut self, i: usize) -> Result<usize> {
        let l = &self.layers[i];
        let train = matches!(self.mode, Mode::Train { .. });
        let dense = self.mode == Mode::Dense;
        match l.op {
            Op::Conv { k, .. } => {
                // Training keeps batch norm as a node of its own (batch statistics).
                let bn = matches!(
                    self.layers.get(i + 1).map(|l| l.op),
                    Some(Op::BatchNorm { .. })
                )
                .then_some(i + 1)
                .filter(|_| !train);
                if bn.is_some() && self.wanted.contains(&i) {
                    return Err(Error::InvalidOption {
                        option: "output".into(),
                        message: format!(
                            "{} is folded with its batch norm when the weights load; ask for \
                             {} (after batch norm) instead",
                            l.name,
                            self.layers[i + 1].name
                        ),
                    });
                }
                let end = bn.unwrap_or(i);
                return Ok(self.fused(i, end, |relu| NodeOp::Conv {
                    layer: i,
                    k,
                    bn,
                    relu,
                }));
            }
            Op::Linear { k, .. } => {
                return Ok(self.fused(i, i, |relu| NodeOp::Linear { layer: i, k, relu }));
            }
            Op::BatchNorm { .. } if train => {
                return Ok(self.fused(i, i, |relu| NodeOp::BatchNorm { layer: i, relu }));
            }
            Op::BatchNorm { .. } => {
                // Only reachable for a batch norm not after a conv, which no config makes.
                return Err(Error::Shape(format!(
                    "batch norm {} does not follow a convolution",
                    l.name
                )));
            }
            Op::Relu => {
                let [c, h, w] = l.output;
                let out = if l.flat() {
                    [self.positions * c, 1, 1]
                } else {
                    [c, h, w]
                };
                self.cur = self.g.node(&l.name, NodeOp::Relu, self.cur, out)
            }
            Op::Lrn(_) => {
                self.cur = self
                    .g
                    .node(&l.name, NodeOp::Lrn { layer: i }, self.cur, l.output)
            }
            Op::MaxPool => self.cur = self.g.node(&l.name, NodeOp::MaxPool, self.cur, l.output),
            Op::AdaptiveAvgPool { .. } | Op::Flatten if dense => self.dense_step(l)?,
            Op::AdaptiveAvgPool { h: oh, w: ow } => {
                let [_, h, w] = l.input;
                if (h, w) != (oh, ow) {
                    let op = NodeOp::AvgPool { h: oh, w: ow };
                    self.cur = self.g.node(&l.name, op, self.cur, l.output);
                }
            }
            Op::Dropout { p } if p > 0.0 && self.mode == (Mode::Train { dropout: true }) => {
                let op = NodeOp::Dropout { layer: i, p };
                self.cur = self.g.node(&l.name, op, self.cur, l.output);
            }
            Op::Flatten | Op::Dropout { .. } => {}
        }
        self.at[i] = Some(self.cur);
        Ok(i + 1)
    }

    /// Dense evaluation: the average pool's size becomes the window fc6 covers, and the
    /// flatten before fc6 becomes im2col over every window position.
    fn dense_step(&mut self, l: &crate::model::Layer) -> Result<()> {
        match l.op {
            Op::AdaptiveAvgPool { h, w } => {
                let [_, mh, mw] = l.input;
                if mh < h || mw < w {
                    return Err(Error::Shape(format!(
                        "dense evaluation needs a feature map of at least {h}x{w} at {}, the \
                         input gives {mh}x{mw}; use a larger image",
                        l.name
                    )));
                }
                self.window = Some((h, w));
                self.positions = (mh - h + 1) * (mw - w + 1);
            }
            _ => {
                let Some((kh, kw)) = self.window else {
                    return Err(Error::InvalidOption {
                        option: "--dense".into(),
                        message: "dense evaluation needs the model's average pool (its size is \
                                  the window fc6 covers)"
                            .into(),
                    });
                };
                let [c, _, _] = l.input;
                let out = [self.positions * c * kh * kw, 1, 1];
                self.cur = self
                    .g
                    .node(&l.name, NodeOp::Im2col { kh, kw }, self.cur, out);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_follows_requests() {
        let m = Model::by_name("vgg11_bn").unwrap();
        let g = Graph::build(&m, &["fc8"]).unwrap();
        // 8 convs (BN and ReLU fused), 5 pools, avgpool is identity at 224, 3 FCs.
        assert_eq!(g.nodes.len(), 8 + 5 + 3);
        assert!(matches!(
            g.nodes[0].op,
            NodeOp::Conv {
                layer: 0,
                k: 3,
                bn: Some(1),
                relu: true
            }
        ));
        // Asking for bn1_1 keeps its ReLU apart.
        let g = Graph::build(&m, &["bn1_1", "relu1_1"]).unwrap();
        assert_eq!(g.nodes.len(), 2);
        assert_eq!(g.nodes[1].op, NodeOp::Relu);
        // The raw conv output of a BN model is not kept.
        assert!(Graph::build(&m, &["conv1_1"]).is_err());
        let g = Graph::build(&Model::vgg16(), &["fc7", PROB]).unwrap();
        assert_eq!(g.outputs.len(), 2);
        assert_eq!(g.nodes.last().unwrap().op, NodeOp::Softmax);
        assert!(Graph::build(&Model::vgg16(), &["nope"]).is_err());
    }
}
