//! The trainer's buffers, laid out once without a device: every tensor a step reads or
//! writes (parameters with their gradients and momentum, activations, gradients, the
//! weight preparation's packed copies, the step's inputs), each node's saved tensors, and
//! the nodes that run in groups of images under the binding limit. `Trainer::new`
//! allocates and binds what this lists; `memory_plan` sums it for `vgg summary --train`.

use super::TrainOptions;
use crate::error::{Error, Result};
use crate::gpu::Precision;
use crate::graph::choice::{ConvChoice, NodeChoice};
use crate::graph::lower::{At, Binds, Grads};
use crate::graph::{Graph, NodeOp};
use crate::kernels::{
    self,
    conv::{ConvShape, ConvTune},
    Bound,
};
use crate::model::{Model, Op};

/// A trainable tensor: weights, gradient and momentum buffers, by torchvision name.
#[derive(Clone)]
pub(super) struct Param {
    pub(super) name: String,
    /// The whole tensor's shape; a weight split over bindings has one `Param` per row
    /// chunk, with `rows` saying which.
    pub(super) shape: Vec<usize>,
    pub(super) rows: Option<(usize, usize)>,
    pub(super) w: usize,
    pub(super) g: usize,
    pub(super) v: usize,
    /// Kept as loaded: no update.
    pub(super) frozen: bool,
}

impl Param {
    pub(super) fn len(&self) -> usize {
        match self.rows {
            Some((_, rows)) => rows * self.shape[1],
            None => self.shape.iter().product(),
        }
    }
}

pub(super) fn bytes(elems: usize) -> u64 {
    (elems.max(1) * 4) as u64
}

/// What a trainer's buffer holds: the rows of `vgg summary --train`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Params,
    Packed,
    Activations,
    Gradients,
    Constants,
    Io,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Params,
        Kind::Packed,
        Kind::Activations,
        Kind::Gradients,
        Kind::Constants,
        Kind::Io,
    ];

    pub(super) fn what(self) -> &'static str {
        match self {
            Kind::Params => "weights, gradients and momentum",
            Kind::Packed => "conv weights packed for the forward kernels",
            Kind::Activations => "activations kept for the backward pass",
            Kind::Gradients => "gradient ping-pong buffers",
            Kind::Constants => "batch norm statistics, ReLU and dropout constants",
            Kind::Io => "inputs, labels and losses of the step",
        }
    }
}

/// How a buffer starts (wgpu zero-fills new buffers).
pub(super) enum Fill {
    Zeros,
    Ones,
    /// A tensor of the weights given, or rows `r0 .. r0 + rows` of a [rows, cols] one.
    Weights {
        name: String,
        shape: Vec<usize>,
        rows: Option<(usize, usize)>,
    },
}

pub(super) struct BufSpec {
    pub(super) label: &'static str,
    pub(super) kind: Kind,
    pub(super) elems: usize,
    pub(super) fill: Fill,
}

/// The step's own buffers (indices into the buffer list).
#[derive(Clone, Copy, Default)]
pub(super) struct Io {
    pub(super) input: usize,
    pub(super) labels: usize,
    pub(super) stats: usize,
    /// Whole-step staging: inputs, labels, stats of every micro-batch.
    pub(super) all_inputs: usize,
    pub(super) all_labels: usize,
    pub(super) all_stats: usize,
    pub(super) hyper: usize,
}

/// What a node refreshes once per step, before the micro-batches.
#[derive(Clone, Copy, Debug)]
pub(super) enum PerStep {
    None,
    /// A conv's canonical weight and bias (its parameters' buffers), packed for its forward
    /// into its `Binds::Conv` buffers; where its input gradient runs, the weight flipped
    /// (`conv::flip`) into `flipped` and packed into its `Grads::Conv::flipped` buffers
    /// (whose bias stays zeros).
    Conv {
        weight: usize,
        bias: usize,
        flipped: Option<usize>,
    },
    /// Dropout: the step's seeds, one per micro-batch, each copied in turn into its
    /// `Binds::Dropout` seed.
    Dropout {
        seeds: usize,
    },
}

/// A node of the training graph with its saved input (`x`) and output (`y`) buffers.
pub(super) struct TrainNode {
    pub(super) at: At,
    /// Its variants, chosen once (`graph::choice`).
    pub(super) choice: NodeChoice,
    pub(super) x: usize,
    pub(super) y: usize,
    /// What its forward and backward bind, as indices into the buffer list.
    pub(super) binds: Binds<usize>,
    pub(super) grads: Grads<usize>,
    pub(super) per_step: PerStep,
    /// Its parameters stay as loaded (`TrainOptions::frozen`).
    pub(super) frozen: bool,
    /// Images per group where the batch's tensors of this node pass one binding: the node
    /// then runs group by group on [`Local`] buffers, copied from and to the batch's.
    pub(super) group: Option<usize>,
}

/// The buffers a node run in groups of images works on (shared by every such node: they
/// run one after another), each holding one group's tensor.
#[derive(Clone, Copy)]
pub(super) struct Local {
    pub(super) x: usize,
    pub(super) y: usize,
    pub(super) dx: usize,
    pub(super) dy: usize,
    pub(super) argmax: usize,
}

/// Bytes of one image's input and output of a node.
pub(super) fn image_bytes(at: &At) -> (u64, u64) {
    let per = |d: &[usize; 3]| d.iter().product::<usize>() as u64 * 4;
    (per(&at.input), per(&at.output))
}

pub(super) fn copy(src: (usize, u64), dst: (usize, u64), bytes: u64) -> Work {
    Work::Copy { src, dst, bytes }
}

/// The groups of a batch of `n` at `size` images a group: (first image, images).
pub(super) fn groups(n: usize, size: usize) -> Vec<(usize, usize)> {
    (0..n)
        .step_by(size.max(1))
        .map(|b0| (b0, size.min(n - b0)))
        .collect()
}

/// Work of a training pass: a bound kernel, or a copy between two buffers (buffer index,
/// byte offset) that moves a group of images' tensor.
pub(super) enum Work {
    Kernel(Bound),
    Copy {
        src: (usize, u64),
        dst: (usize, u64),
        bytes: u64,
    },
}

/// Every buffer a trainer allocates and what each node binds, decided without a device:
/// the trainer allocates exactly this list, and [`memory_plan`] sums it.
pub(super) struct Layout {
    pub(super) bufs: Vec<BufSpec>,
    pub(super) params: Vec<Param>,
    pub(super) nodes: Vec<TrainNode>,
    pub(super) running: Vec<(String, usize, usize)>,
    pub(super) io: Io,
    pub(super) grads: [usize; 2],
    /// The weight gradients' partial sums (`conv::backward_weight::partial_len`), one buffer for
    /// every conv: they run one after another.
    pub(super) partials: usize,
    /// Where some node runs in groups of images.
    pub(super) local: Option<Local>,
    /// The nodes that run in groups of images: (name, images per group).
    pub(super) grouped: Vec<(String, usize)>,
}

/// A node's choice (`Choose::node`: the node, whether its input gradient is computed),
/// and the row chunks of an FC weight [n_out, k].
pub(super) type Decide<'a> = (
    &'a dyn Fn(&At, bool) -> NodeChoice,
    &'a dyn Fn(usize, usize) -> Result<Vec<(usize, usize)>>,
);

/// Whether a node of this op can run in groups of images bit for bit as on the whole batch:
/// it works image by image, or (conv) its reductions over the batch add the groups' sums in
/// the batch's order.
pub(super) fn groupable(op: NodeOp) -> bool {
    matches!(
        op,
        NodeOp::Conv { .. } | NodeOp::Relu | NodeOp::MaxPool | NodeOp::Lrn { .. }
    )
}

/// Images per group where a node's batch tensors (of `at.n` images) pass `max_binding`
/// bytes, in even groups (16 at 10 a binding runs as 8 + 8); None where the whole batch
/// fits one binding. An error where one image's tensor alone passes it, or the op does not
/// run in groups.
pub(super) fn group_size(name: &str, at: &At, max_binding: u64) -> Result<Option<usize>> {
    let n = at.n;
    let per_image = at
        .input
        .iter()
        .product::<usize>()
        .max(at.output.iter().product::<usize>());
    if (n as u64)
        .checked_mul(per_image as u64 * 4)
        .is_some_and(|b| b <= max_binding)
    {
        return Ok(None);
    }
    let fit = (max_binding / (per_image as u64 * 4)) as usize;
    if fit == 0 || !groupable(at.op) {
        return Err(Error::Limit(format!(
            "{name} at a batch of {n} needs {} bytes in one binding, the adapter allows \
             {max_binding}{}; train with a smaller --batch-size and --accumulate to keep the \
             step's batch",
            n * per_image * 4,
            if fit == 0 {
                " (one image's tensor alone passes it)"
            } else {
                ", and this op does not run in groups of images"
            }
        )));
    }
    let count = n.div_ceil(fit);
    Ok(Some(n.div_ceil(count)))
}

impl Layout {
    /// The trainer's buffers for `model` at `opts`, with every tensor a kernel binds within
    /// `max_binding` bytes: a node whose batch tensors pass it runs in groups of images.
    pub(super) fn new(
        model: &Model,
        opts: &TrainOptions,
        max_binding: u64,
        (choose, chunks): Decide,
    ) -> Result<Layout> {
        let graph = Graph::build_train(model, opts.dropout)?;
        let (n, acc) = (opts.batch, opts.accumulate);
        let mut l = Layout {
            bufs: Vec::new(),
            params: Vec::new(),
            nodes: Vec::new(),
            running: Vec::new(),
            io: Io::default(),
            grads: [0, 0],
            partials: 0,
            local: None,
            grouped: Vec::new(),
        };
        // The largest group tensors: (input, output) elements.
        let mut local = (0, 0);
        l.partials = l.buf("weight gradient partial sums", Kind::Gradients, 1);
        let in_len = model.input_dims().iter().product::<usize>();
        l.io = Io {
            input: l.buf("train input", Kind::Io, n * in_len),
            labels: l.buf("train labels", Kind::Io, n),
            stats: l.buf("train stats", Kind::Io, 2 * n),
            all_inputs: l.buf("step inputs", Kind::Io, acc * n * in_len),
            all_labels: l.buf("step labels", Kind::Io, acc * n),
            all_stats: l.buf("step stats", Kind::Io, acc * 2 * n),
            hyper: l.buf("hyperparameters", Kind::Io, kernels::optim::HYPER),
        };
        // The buffer holding each tensor of the graph.
        let mut held = vec![l.io.input; graph.tensors.len()];
        let mut max_act = 1;
        for node in &graph.nodes {
            let at = At {
                op: node.op,
                n,
                input: graph.tensors[node.input].dims,
                output: graph.tensors[node.output].dims,
            };
            max_act = max_act.max(at.output.iter().product::<usize>());
            let group = group_size(&node.name, &at, max_binding)?;
            if let Some(size) = group {
                let i = at.input.iter().product::<usize>();
                let o = at.output.iter().product::<usize>();
                local = (local.0.max(size * i), local.1.max(size * o));
                l.grouped.push((node.name.clone(), size));
            }
            let y = l.buf(
                "activation",
                Kind::Activations,
                n * at.output.iter().product::<usize>(),
            );
            let first_param = l.params.len();
            // The first node's input is the data: no gradient needed.
            let choice = choose(&at, !l.nodes.is_empty());
            let frozen = match node.op {
                NodeOp::Conv { layer, .. }
                | NodeOp::BatchNorm { layer, .. }
                | NodeOp::Linear { layer, .. } => layer < opts.frozen,
                _ => false,
            };
            let (binds, grads, per_step) = l.node_buffers(model, &at, (choice, frozen), chunks)?;
            for p in &mut l.params[first_param..] {
                p.frozen = frozen;
            }
            if !frozen {
                l.reserve_partials(&at, choice, group.unwrap_or(n));
            }
            held[node.output] = y;
            l.nodes.push(TrainNode {
                at,
                choice,
                x: held[node.input],
                y,
                binds,
                grads,
                per_step,
                frozen,
                group,
            });
        }
        if local != (0, 0) {
            let (i, o) = local;
            l.local = Some(Local {
                x: l.buf("group input", Kind::Activations, i),
                y: l.buf("group output", Kind::Activations, o),
                dx: l.buf("group input gradient", Kind::Gradients, i),
                dy: l.buf("group output gradient", Kind::Gradients, o),
                argmax: l.buf("group argmax", Kind::Activations, o),
            });
        }
        l.grads = [
            l.buf("grad a", Kind::Gradients, n * max_act),
            l.buf("grad b", Kind::Gradients, n * max_act),
        ];
        Ok(l)
    }

    /// Grows the weight gradients' shared partial-sum buffer to what a conv node's needs,
    /// for a group of `images` at a time (the whole batch where it runs in one).
    pub(super) fn reserve_partials(&mut self, at: &At, choice: NodeChoice, images: usize) {
        let (Some(s), Some(c)) = (at.conv_shape(), choice.conv()) else {
            return;
        };
        let need = c.wgrad_partials(ConvShape { n: images, ..s }, at.n);
        let p = &mut self.bufs[self.partials];
        p.elems = p.elems.max(need);
    }

    pub(super) fn push(
        &mut self,
        label: &'static str,
        kind: Kind,
        elems: usize,
        fill: Fill,
    ) -> usize {
        self.bufs.push(BufSpec {
            label,
            kind,
            elems,
            fill,
        });
        self.bufs.len() - 1
    }

    pub(super) fn buf(&mut self, label: &'static str, kind: Kind, elems: usize) -> usize {
        self.push(label, kind, elems, Fill::Zeros)
    }

    /// A trainable tensor (or rows of one): its weights, gradient and momentum.
    pub(super) fn param(
        &mut self,
        name: String,
        shape: &[usize],
        rows: Option<(usize, usize)>,
    ) -> usize {
        let len = match rows {
            Some((_, r)) => r * shape[1],
            None => shape.iter().product(),
        };
        let fill = Fill::Weights {
            name: name.clone(),
            shape: shape.to_vec(),
            rows,
        };
        let w = self.push("weight", Kind::Params, len, fill);
        let g = self.buf("grad", Kind::Params, len);
        let v = self.buf("momentum", Kind::Params, len);
        self.params.push(Param {
            name,
            shape: shape.to_vec(),
            rows,
            w,
            g,
            v,
            frozen: false,
        });
        self.params.len() - 1
    }

    /// A node's buffers: its parameters', what its kernels bind, and what is refreshed each
    /// step. A frozen batch norm keeps its running statistics.
    pub(super) fn node_buffers(
        &mut self,
        model: &Model,
        at: &At,
        (choice, frozen): (NodeChoice, bool),
        chunks: &dyn Fn(usize, usize) -> Result<Vec<(usize, usize)>>,
    ) -> Result<(Binds<usize>, Grads<usize>, PerStep)> {
        let acc = self.bufs[self.io.all_labels].elems / at.n;
        let c = at.input[0];
        let layer = |i: usize| &model.layers()[i];
        let none = |b| Ok((b, Grads::None, PerStep::None));
        match at.op {
            NodeOp::Conv { layer: i, k, .. } => {
                let c = choice
                    .conv()
                    .ok_or_else(|| Error::Shape(format!("conv layer {i} chose no conv")))?;
                Ok(self.conv_buffers(&layer(i).key, at.conv(k), c))
            }
            NodeOp::BatchNorm { layer: i, .. } => {
                Ok(self.batchnorm_buffers(&layer(i).key, c, frozen))
            }
            NodeOp::Relu => none(Binds::Relu {
                scale: self.push("ones", Kind::Constants, c, Fill::Ones),
                shift: self.buf("zeros", Kind::Constants, c),
            }),
            NodeOp::MaxPool => none(Binds::MaxPool {
                argmax: self.buf(
                    "argmax",
                    Kind::Activations,
                    at.n * at.output.iter().product::<usize>(),
                ),
            }),
            NodeOp::Linear { layer: i, .. } => {
                let Op::Linear { k, n: n_out } = layer(i).op else {
                    return Err(Error::Shape(format!("layer {i} is not FC")));
                };
                let variant = choice
                    .linear()
                    .ok_or_else(|| Error::Shape(format!("FC layer {i} chose no variant")))?;
                let key = &layer(i).key;
                let rows = chunks(k, n_out)?;
                let whole = rows.len() == 1;
                let mut parts = Vec::new();
                for &(r0, r) in &rows {
                    let part = (!whole).then_some((r0, r));
                    let q = self.param(format!("{key}.weight"), &[n_out, k], part);
                    parts.push((r0, r, self.params[q].w, self.params[q].g));
                }
                let bias = self.param(format!("{key}.bias"), &[n_out], None);
                let bias = self.params[bias].clone();
                let binds = Binds::Linear {
                    chunks: parts.iter().map(|p| p.2).collect(),
                    bias: bias.w,
                    variant,
                };
                let grads = Grads::Linear {
                    chunks: parts,
                    db: bias.g,
                };
                Ok((binds, grads, PerStep::None))
            }
            NodeOp::Dropout { .. } => {
                // This step's seeds, one per micro-batch, and the current one.
                let seeds = self.buf("dropout seeds", Kind::Constants, acc);
                let seed = self.buf("dropout seed", Kind::Constants, 1);
                Ok((
                    Binds::Dropout { seed },
                    Grads::None,
                    PerStep::Dropout { seeds },
                ))
            }
            NodeOp::Lrn { .. } | NodeOp::AvgPool { .. } => none(Binds::Plain),
            NodeOp::Softmax | NodeOp::Im2col { .. } => {
                Err(Error::Shape(format!("{:?} is not a training node", at.op)))
            }
        }
    }

    /// A conv's parameters, its weights packed for its forward configuration and, where
    /// its input gradient runs, the flipped weight packed for that conv.
    fn conv_buffers(
        &mut self,
        key: &str,
        s: ConvShape,
        c: ConvChoice,
    ) -> (Binds<usize>, Grads<usize>, PerStep) {
        let (c_in, c_out, k) = (s.c_in, s.c_out, s.k);
        let t = c.forward;
        // Buffers count 4-byte words: an f16 packing takes half as many.
        let words = |t: ConvTune, e: usize| match t.weight_precision(Precision::F32) {
            Precision::F16 => e.div_ceil(2),
            Precision::F32 => e,
        };
        let (wl, bl) = t.packed_elems(c_in, c_out, k);
        let w = self.param(format!("{key}.weight"), &[c_out, c_in, k, k], None);
        let b = self.param(format!("{key}.bias"), &[c_out], None);
        let (w, b) = (self.params[w].clone(), self.params[b].clone());
        let binds = Binds::Conv {
            tune: t,
            weight: self.buf("packed weight", Kind::Packed, words(t, wl)),
            bias: self.buf("packed bias", Kind::Packed, bl),
        };
        // (configuration, flipped, packed, zero bias)
        let dx = c.dx.map(|dt| {
            let (dwl, dbl) = dt.packed_elems(c_out, c_in, k);
            (
                dt,
                self.buf("flipped weight", Kind::Packed, c_out * c_in * k * k),
                self.buf("packed flipped weight", Kind::Packed, words(dt, dwl)),
                self.buf("zero bias", Kind::Packed, dbl),
            )
        });
        let grads = Grads::Conv {
            weight: w.w,
            dw: w.g,
            db: b.g,
            flipped: dx.map(|(dt, _, packed, zero)| (dt, packed, zero)),
            partials: self.partials,
        };
        let per_step = PerStep::Conv {
            weight: w.w,
            bias: b.w,
            flipped: dx.map(|d| d.1),
        };
        (binds, grads, per_step)
    }

    /// Training's batch norm over `c` channels: scale and shift, the running statistics
    /// (torchvision's update rate; none for a frozen layer), and the pass's scratch.
    fn batchnorm_buffers(
        &mut self,
        key: &str,
        c: usize,
        frozen: bool,
    ) -> (Binds<usize>, Grads<usize>, PerStep) {
        let mut running = |what: &str| {
            let name = format!("{key}.{what}");
            let fill = Fill::Weights {
                name: name.clone(),
                shape: vec![c],
                rows: None,
            };
            let id = self.push("running statistics", Kind::Constants, c, fill);
            self.running.push((name, id, c));
            id
        };
        let (running_mean, running_var) = (running("running_mean"), running("running_var"));
        let gamma = self.param(format!("{key}.weight"), &[c], None);
        let beta = self.param(format!("{key}.bias"), &[c], None);
        let (gamma, beta) = (self.params[gamma].clone(), self.params[beta].clone());
        let binds = Binds::BatchNorm {
            gamma: gamma.w,
            beta: beta.w,
            stats: self.buf("bn stats", Kind::Constants, 2 * c),
            running_mean,
            running_var,
            momentum: if frozen { 0.0 } else { 0.1 },
        };
        let grads = Grads::BatchNorm {
            dgamma: gamma.g,
            dbeta: beta.g,
            sums: self.buf("bn sums", Kind::Constants, 2 * c),
        };
        (binds, grads, PerStep::None)
    }
}

/// Checks a step's size before anything is sized by it: the batch and the micro-batches
/// at least 1, their product at most [`crate::graph::plan::MAX_BATCH`], and the step's
/// widest tensor within `max_buffer` bytes (the adapter's buffer limit).
pub fn check_step(model: &Model, opts: &TrainOptions, max_buffer: u64) -> Result<()> {
    let bad = |message: String| Error::InvalidOption {
        option: "batch".into(),
        message,
    };
    if opts.batch == 0 || opts.accumulate == 0 {
        return Err(bad(
            "batch size and accumulation steps must be at least 1".into()
        ));
    }
    let max = crate::graph::plan::MAX_BATCH;
    let Some(per_step) = opts
        .batch
        .checked_mul(opts.accumulate)
        .filter(|p| *p <= max)
    else {
        return Err(bad(format!(
            "{} images x {} accumulation steps is over the {max} images a step may take",
            opts.batch, opts.accumulate
        )));
    };
    let widest = model
        .layers()
        .iter()
        .map(|l| l.output_len())
        .max()
        .unwrap_or(1);
    let widest = widest.max(model.input_dims().iter().product());
    let step_bytes = (per_step as u64).checked_mul(widest as u64 * 4);
    if step_bytes.is_none_or(|b| b > max_buffer) {
        return Err(bad(format!(
            "{} images x {} micro-batches: a step's largest tensor would pass the adapter's \
             {max_buffer}-byte buffer limit",
            opts.batch, opts.accumulate
        )));
    }
    Ok(())
}

/// The GPU memory a [`Trainer`](super::Trainer) allocates for `model` at these options, by
/// kind, without a device: what `vgg summary --train` prints. `choose` gives each node's
/// choice (`Choose::node` on the device that will train). It sums the
/// buffer list the trainer allocates (FC weights split over bindings take the same bytes).
pub fn memory_plan(
    model: &Model,
    opts: &TrainOptions,
    max_binding: u64,
    choose: impl Fn(&At, bool) -> NodeChoice,
) -> Result<TrainPlan> {
    check_step(model, opts, u64::MAX)?;
    let whole = |_k: usize, n: usize| Ok(vec![(0, n)]);
    let max = opts.group_binding.unwrap_or(u64::MAX).min(max_binding);
    let lay = Layout::new(model, opts, max, (&choose, &whole))?;
    Ok(TrainPlan {
        bytes: Kind::ALL
            .iter()
            .map(|&kind| {
                let b = lay.bufs.iter().filter(|s| s.kind == kind);
                (kind.what(), b.map(|s| bytes(s.elems)).sum())
            })
            .collect(),
        grouped: lay.grouped,
    })
}

/// What [`memory_plan`] finds.
pub struct TrainPlan {
    /// Bytes by what they hold.
    pub bytes: Vec<(&'static str, u64)>,
    /// The nodes that run in groups of images (`Trainer::grouped`).
    pub grouped: Vec<(String, usize)>,
}
