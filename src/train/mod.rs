//! Training on the GPU: a step (forward keeping what backward needs, softmax cross-entropy,
//! backward, SGD with momentum and weight decay) over one or more micro-batches, recorded
//! into one command encoder and submitted once; the only host read is the per-image loss
//! and correctness. Weights stay in torchvision's canonical layout, where the optimizer and
//! the gradient kernels work; conv weights are repacked for the forward kernels once per
//! step on the GPU.

mod demo;
mod finetune;
pub mod fit;
mod layout;
pub mod scaler;
mod step;

pub use demo::{demo_weights, mnist_model, MNIST_MODEL};
pub use finetune::{frozen_prefix, init_from, init_from_shallower, FROM_SHALLOWER};
pub use layout::{check_step, memory_plan, TrainPlan};
pub use scaler::LossScaler;

use layout::{
    bytes, copy, groups, image_bytes, Fill, Io, Layout, Local, Param, PerStep, TrainNode, Work,
};

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::gpu::Precision;
use crate::graph::choice::{Choose, NodeChoice, Numerics};
use crate::graph::lower::{At, Binds, Flow, Grads, Lowering, PingPong};
use crate::graph::NodeOp;
use crate::kernels::{
    self,
    conv::ConvTune,
    linear::{row_chunks, LinearVariant},
    Bound, Kernel,
};
use crate::model::{Model, Tensor, Weights};

/// Optimisation settings (the paper's: momentum 0.9, weight decay 5e-4).
#[derive(Clone, Copy, Debug)]
pub struct TrainOptions {
    /// Images per micro-batch (one forward and backward).
    pub batch: usize,
    /// Micro-batches whose gradients add up to one step (the logical batch is
    /// `batch * accumulate`).
    pub accumulate: usize,
    pub momentum: f32,
    pub weight_decay: f32,
    /// Whether dropout layers drop (off to compare with a deterministic reference).
    pub dropout: bool,
    /// Seed of the dropout masks (mixed with the step number).
    pub seed: u64,
    /// Split FC weights as if one binding held at most this many bytes (tests use it to
    /// exercise the split on small layers); the adapter's limit otherwise.
    pub max_binding: Option<u64>,
    /// Run a node whose batch tensors pass one binding in groups of images as if a binding
    /// held at most this many bytes (tests use it to exercise the groups on small layers);
    /// the adapter's limit otherwise.
    pub group_binding: Option<u64>,
    /// The forward convolution variant of every layer [default: the adapter's].
    pub conv: Option<ConvTune>,
    /// The leading model layers whose parameters (and batch-norm statistics) stay bitwise
    /// unchanged: no weight gradients, no update, and no backward pass at all below the
    /// first layer that trains (fine-tuning a new head on frozen features).
    pub frozen: usize,
    /// The multiply operands of the conv and FC layers: `F16` runs the tensor-core variants
    /// (f16 operands, f32 accumulation) where the adapter has cooperative matrices, with the
    /// weights kept in f32 (master weights, repacked to f16 each step) and dynamic loss
    /// scaling, as PyTorch's AMP with GradScaler; elsewhere the f32 kernels run, loss
    /// scaling included. Activations and gradients are stored in f32 either way.
    pub precision: Precision,
    /// The FC variant of every layer's forward [default: the adapter's, by precision].
    pub linear: Option<LinearVariant>,
    /// The first loss scale of `F16` training [default: 2^16, AMP's].
    pub loss_scale: Option<f32>,
    /// Steps without an overflow after which the loss scale doubles (AMP's 2000).
    pub scale_growth: u32,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            batch: 32,
            accumulate: 1,
            momentum: 0.9,
            weight_decay: 5e-4,
            dropout: true,
            seed: 0,
            max_binding: None,
            group_binding: None,
            conv: None,
            frozen: 0,
            precision: Precision::F32,
            linear: None,
            loss_scale: None,
            scale_growth: 2000,
        }
    }
}

/// What one step reports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// Mean softmax cross-entropy over the step's images.
    pub loss: f64,
    /// Images whose top class was the label.
    pub correct: usize,
    pub images: usize,
    /// The loss scale the step ran at (1 in f32).
    pub loss_scale: f32,
    /// A gradient overflowed at that scale: the update was skipped (weights and momentum
    /// unchanged) and the scale halved.
    pub skipped: bool,
}

pub struct Trainer<'g> {
    gpu: &'g Gpu,
    model: Model,
    opts: TrainOptions,
    bufs: Vec<wgpu::Buffer>,
    params: Vec<Param>,
    /// BN running statistics: (name, buffer, length).
    running: Vec<(String, usize, usize)>,
    /// Per step, before the micro-batches: bias copies (src, dst, bytes) then repacking.
    bias_copies: Vec<(usize, usize, u64)>,
    pack: Vec<Bound>,
    /// Per micro-batch: forward, loss and backward; the first micro-batch's backward
    /// writes gradients, the others add to them.
    first: Vec<Work>,
    rest: Vec<Work>,
    /// The group buffers of nodes that run in groups of images.
    local: Option<Local>,
    grouped: Vec<(String, usize)>,
    sgd: Vec<Bound>,
    io: Io,
    readback: wgpu::Buffer,
    /// Per dropout node: (the step's seeds, one per micro-batch; the current seed).
    seeds: Vec<(usize, usize)>,
    /// Each conv and FC layer's choice, by layer index.
    choices: std::collections::BTreeMap<usize, NodeChoice>,
    step: u64,
    /// A batch written by `stage` and not yet submitted.
    staged: bool,
    /// A step submitted by `submit` whose statistics `finish` has not read.
    in_flight: bool,
    /// Loss scaling (`F16` training): the overflow checks run before the update, over
    /// every gradient that trains.
    overflow: Vec<Bound>,
    /// The loss-scale schedule where steps are loss-scaled (f16 operands).
    scaler: Option<LossScaler>,
}

impl<'g> Trainer<'g> {
    /// Uploads `weights` (and zero momentum) for training `model`.
    pub fn new(gpu: &'g Gpu, model: &Model, weights: &Weights, opts: TrainOptions) -> Result<Self> {
        weights.validate(model)?;
        check_step(model, &opts, gpu.limits().max_buffer_size)?;
        let scaler = LossScaler::new(opts.loss_scale.unwrap_or(65536.0), opts.scale_growth)?;
        let max = opts.max_binding.unwrap_or(u64::MAX);
        let choose = Choose {
            gpu,
            numerics: Numerics::training(opts.precision),
            conv: opts.conv,
            linear: opts.linear,
        };
        let lay = Layout::new(
            model,
            &opts,
            opts.group_binding
                .unwrap_or(u64::MAX)
                .min(gpu.max_binding_bytes()),
            (&|at, dx| choose.node(at, dx), &|k, n| {
                row_chunks(gpu, k, n, max, Precision::F32)
            }),
        )?;
        // The same choices as the executor's for the same layers: `Choose` makes both.
        let choices = lay
            .nodes
            .iter()
            .filter_map(|t| match t.at.op {
                NodeOp::Conv { layer, .. } | NodeOp::Linear { layer, .. } => {
                    Some((layer, t.choice))
                }
                _ => None,
            })
            .collect();
        let mut bufs = Vec::with_capacity(lay.bufs.len());
        for spec in &lay.bufs {
            bufs.push(match &spec.fill {
                Fill::Zeros => gpu.alloc(spec.label, bytes(spec.elems))?,
                Fill::Ones => gpu.upload(spec.label, &vec![1.0f32; spec.elems])?,
                Fill::Weights { name, shape, rows } => {
                    let t = weights.expect(name, shape)?;
                    let data = match rows {
                        Some((r0, r)) => &t.data[r0 * shape[1]..(r0 + r) * shape[1]],
                        None => &t.data[..],
                    };
                    gpu.upload(name, data)?
                }
            });
        }
        let mut t = Trainer {
            gpu,
            model: model.clone(),
            opts,
            bufs,
            params: lay.params,
            running: lay.running,
            bias_copies: Vec::new(),
            pack: Vec::new(),
            first: Vec::new(),
            rest: Vec::new(),
            local: lay.local,
            grouped: lay.grouped,
            sgd: Vec::new(),
            io: lay.io,
            // The step's statistics, then the overflow flag.
            readback: gpu
                .readback_buffer("train stats", bytes(2 * opts.batch * opts.accumulate + 1))?,
            seeds: Vec::new(),
            choices,
            step: 0,
            staged: false,
            in_flight: false,
            overflow: Vec::new(),
            scaler: choose.numerics.loss_scaled().then_some(scaler),
        };
        t.build(&lay.nodes, lay.grads)?;
        Ok(t)
    }

    fn lowering(&self) -> Lowering<'_> {
        Lowering {
            gpu: self.gpu,
            model: &self.model,
            numerics: Numerics::training(self.opts.precision),
            max_binding: self.opts.max_binding.unwrap_or(u64::MAX),
        }
    }

    /// A node's forward and backward buffers from its indices; a max pool run in groups of
    /// images keeps its argmax in `local`'s.
    fn buffers(
        &self,
        node: &TrainNode,
        local: Option<Local>,
    ) -> (Binds<&wgpu::Buffer>, Grads<&wgpu::Buffer>) {
        let mut binds = node.binds.clone();
        if let (Some(l), Binds::MaxPool { argmax }) = (local, &mut binds) {
            *argmax = l.argmax;
        }
        let b = |i: usize| &self.bufs[i];
        (binds.map(b), node.grads.map(b))
    }

    /// A node's forward over the batch group by group: each group's input copied into the
    /// group buffer, the node's kernels at the group's size, its output (and a max pool's
    /// argmax) copied back to the batch's buffers.
    fn grouped_forward(&self, lower: &Lowering, t: &TrainNode, size: usize) -> Result<Vec<Work>> {
        let l = self.local_buffers()?;
        let (pi, po) = image_bytes(&t.at);
        let mut ks = Vec::new();
        for (b0, gn) in groups(t.at.n, size) {
            let (b0, g) = (b0 as u64, gn as u64);
            let at = At { n: gn, ..t.at };
            ks.push(copy((t.x, b0 * pi), (l.x, 0), g * pi));
            let (x, y) = (&self.bufs[l.x], &self.bufs[l.y]);
            let fwd = lower.forward(&at, x, y, &self.buffers(t, Some(l)).0)?;
            ks.extend(fwd.into_iter().map(Work::Kernel));
            ks.push(copy((l.y, 0), (t.y, b0 * po), g * po));
            if let Binds::MaxPool { argmax } = t.binds {
                ks.push(copy((l.argmax, 0), (argmax, b0 * po), g * po));
            }
        }
        Ok(ks)
    }

    /// A node's backward over the batch group by group, from the gradient in buffer `g.0`
    /// (the node's output's) to its input's in `g.1`: each group's saved tensors and output
    /// gradient copied into the group buffers, the node's backward kernels at the group's
    /// size, the input gradient copied back. The second group on adds to the parameter
    /// gradients the first wrote, in the batch's order (`Flow::batch`), so the sums are the
    /// whole batch's bit for bit. Whether an input gradient was written to `g.1`.
    fn grouped_backward(
        &self,
        lower: &Lowering,
        t: &TrainNode,
        size: usize,
        g: (usize, usize),
        flow: Flow,
        ks: &mut Vec<Work>,
    ) -> Result<bool> {
        let l = self.local_buffers()?;
        let (pi, po) = image_bytes(&t.at);
        for (k, (b0, gn)) in groups(t.at.n, size).into_iter().enumerate() {
            let (b0, n) = (b0 as u64, gn as u64);
            let at = At { n: gn, ..t.at };
            ks.push(copy((g.0, b0 * po), (l.dy, 0), n * po));
            ks.push(copy((t.x, b0 * pi), (l.x, 0), n * pi));
            ks.push(copy((t.y, b0 * po), (l.y, 0), n * po));
            if let Binds::MaxPool { argmax } = t.binds {
                ks.push(copy((argmax, b0 * po), (l.argmax, 0), n * po));
            }
            let flow = Flow {
                accumulate: flow.accumulate || k > 0,
                ..flow
            };
            let (x, y) = (&self.bufs[l.x], &self.bufs[l.y]);
            let (dy, dx) = (&self.bufs[l.dy], &self.bufs[l.dx]);
            let mut pp = PingPong::new(dy, dx);
            let (b, d) = self.buffers(t, Some(l));
            let bwd = lower.backward(&at, (x, y), &mut pp, &b, &d, flow)?;
            ks.extend(bwd.into_iter().map(Work::Kernel));
            // Nothing below the first layer that trains reads a gradient (`Flow::dx`).
            if !flow.dx || pp.swaps() == 0 {
                continue;
            }
            let result = if pp.swaps() % 2 == 1 { l.dx } else { l.dy };
            ks.push(copy((result, 0), (g.1, b0 * pi), n * pi));
        }
        Ok(flow.dx)
    }

    fn local_buffers(&self) -> Result<Local> {
        self.local
            .ok_or_else(|| Error::Shape("a node runs in groups without group buffers".into()))
    }

    fn kernel(&self, op: Kernel, ids: &[usize]) -> Result<Bound> {
        let b: Vec<&wgpu::Buffer> = ids.iter().map(|&i| &self.bufs[i]).collect();
        let bg = op.bind(self.gpu, &b)?;
        Ok(Bound::Kernel(op, bg))
    }

    /// Binds every node's forward and backward kernels (through the shared lowering), the
    /// loss, the per-step repacking of conv weights and the optimiser.
    fn build(&mut self, nodes: &[TrainNode], grads: [usize; 2]) -> Result<()> {
        self.build_packing(nodes)?;
        let lower = self.lowering();
        // The first micro-batch's list, and the one of every later one (adding to the
        // gradients it left).
        let mut lists = Vec::new();
        for mb in 0..self.opts.accumulate.min(2) {
            lists.push(self.micro_batch(&lower, nodes, grads, mb > 0)?);
        }
        let mut lists = lists.into_iter();
        self.first = lists.next().unwrap_or_default();
        self.rest = lists.next().unwrap_or_default();
        self.build_optimiser()
    }

    /// The per-step weight preparation: each conv's weights packed for its forward variant
    /// and, where its input gradient is needed, flipped and packed for that conv's; the
    /// dropout seeds.
    fn build_packing(&mut self, nodes: &[TrainNode]) -> Result<()> {
        for node in nodes {
            match (node.per_step, &node.binds, &node.grads) {
                (
                    PerStep::Conv {
                        weight: w,
                        bias: b,
                        flipped,
                    },
                    &Binds::Conv {
                        tune,
                        weight: packed,
                        bias: packed_bias,
                    },
                    Grads::Conv { flipped: dx, .. },
                ) => {
                    let s = node.at.conv_shape().ok_or_else(|| unchosen(node))?;
                    self.bias_copies.push((b, packed_bias, bytes(s.c_out)));
                    let ks = {
                        let b = |i: usize| &self.bufs[i];
                        // A frozen layer runs no backward pass (nothing below the first
                        // layer that trains needs a gradient): no input gradient to prepare.
                        let dx = match (flipped, dx) {
                            (Some(f), Some((tune, packed, _))) if !node.frozen => {
                                Some((*tune, b(f), b(*packed)))
                            }
                            _ => None,
                        };
                        self.lowering()
                            .prepare(&node.at, (tune, b(packed)), b(w), dx)?
                    };
                    self.pack.extend(ks);
                }
                (PerStep::Dropout { seeds }, &Binds::Dropout { seed }, _) => {
                    self.seeds.push((seeds, seed))
                }
                (PerStep::None, ..) => {}
                _ => return Err(unchosen(node)),
            }
        }
        Ok(())
    }

    /// One micro-batch's forward, loss and backward, as kernels in order; `accumulate`
    /// adds the parameter gradients to an earlier micro-batch's.
    fn micro_batch(
        &self,
        lower: &Lowering,
        nodes: &[TrainNode],
        grads: [usize; 2],
        accumulate: bool,
    ) -> Result<Vec<Work>> {
        let gpu = self.gpu;
        let (n, acc) = (self.opts.batch, self.opts.accumulate);
        let classes = self.model.classes();
        let logits = nodes.last().map_or(self.io.input, |t| t.y);
        let scale = 1.0 / (n * acc) as f32;
        let mut ks = Vec::new();
        for t in nodes {
            if let Some(size) = t.group {
                ks.extend(self.grouped_forward(lower, t, size)?);
                continue;
            }
            let (x, y) = (&self.bufs[t.x], &self.bufs[t.y]);
            let fwd = lower.forward(&t.at, x, y, &self.buffers(t, None).0)?;
            ks.extend(fwd.into_iter().map(Work::Kernel));
        }
        let op = kernels::softmax::xent(gpu, n, classes, scale)?;
        let io = self.io;
        let xent = self.kernel(op, &[logits, io.labels, grads[0], io.stats, io.hyper])?;
        ks.push(Work::Kernel(xent));
        // The gradient buffers by index: (holding dL/d(output) of the node lowered
        // next, the other).
        let mut g = (grads[0], grads[1]);
        // Nothing below the first node with parameters that train needs a gradient.
        let first = nodes
            .iter()
            .position(|t| !t.frozen && !matches!(t.binds, Binds::Plain | Binds::Relu { .. }));
        for (i, t) in nodes.iter().enumerate().rev() {
            if first.is_none_or(|f| i < f) {
                break;
            }
            let flow = Flow {
                params: !t.frozen,
                dx: first.is_some_and(|f| i > f),
                accumulate,
                batch: n,
            };
            if let Some(size) = t.group {
                if self.grouped_backward(lower, t, size, g, flow, &mut ks)? {
                    g = (g.1, g.0);
                }
                continue;
            }
            let (x, y) = (&self.bufs[t.x], &self.bufs[t.y]);
            let mut pp = PingPong::new(&self.bufs[g.0], &self.bufs[g.1]);
            let (b, d) = self.buffers(t, None);
            let bwd = lower.backward(&t.at, (x, y), &mut pp, &b, &d, flow)?;
            ks.extend(bwd.into_iter().map(Work::Kernel));
            if pp.swaps() % 2 == 1 {
                g = (g.1, g.0);
            }
        }
        Ok(ks)
    }

    /// SGD for every parameter that trains, and with loss scaling its overflow check.
    fn build_optimiser(&mut self) -> Result<()> {
        let gpu = self.gpu;
        for i in 0..self.params.len() {
            let p = &self.params[i];
            if p.frozen {
                continue;
            }
            let op = kernels::optim::sgd(gpu, p.len())?;
            let ids = [p.w, p.g, p.v, self.io.hyper];
            let k = self.kernel(op, &ids)?;
            self.sgd.push(k);
            if self.scaling() {
                let op = kernels::optim::overflow(gpu, p.len())?;
                let k = self.kernel(op, &[p.g, self.io.hyper])?;
                self.overflow.push(k);
            }
        }
        Ok(())
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Every parameter's buffer `pick` (weights or momentum) read back and, for weights
    /// split over bindings, reassembled.
    async fn gather(&self, pick: impl Fn(&Param) -> usize) -> Result<Weights> {
        let mut w = Weights::new();
        for p in &self.params {
            let data = self
                .gpu
                .read_async::<f32>(&self.bufs[pick(p)], p.len())
                .await?;
            match (p.rows, w.get_mut(&p.name)) {
                (Some((r0, _)), Some(t)) if r0 > 0 => t.data.extend(data),
                _ => w.insert(&p.name, Tensor::new(vec![p.len()], data)?),
            }
        }
        for p in &self.params {
            if let Some(t) = w.get_mut(&p.name) {
                t.shape = p.shape.clone();
            }
        }
        Ok(w)
    }

    /// The current weights (and batch-norm running statistics), read back.
    pub fn weights(&self) -> Result<Weights> {
        crate::gpu::blocking(self.weights_async())
    }

    /// [`Trainer::weights`] as a future: what a browser page awaits.
    pub async fn weights_async(&self) -> Result<Weights> {
        let mut w = self.gather(|p| p.w).await?;
        for (name, id, len) in &self.running {
            let data = self.gpu.read_async::<f32>(&self.bufs[*id], *len).await?;
            w.insert(name, Tensor::new(vec![*len], data)?);
        }
        Ok(w)
    }

    /// The momentum buffers, by parameter name (for checkpoints).
    pub fn momentum(&self) -> Result<Weights> {
        crate::gpu::blocking(self.gather(|p| p.v))
    }

    /// Restores momentum buffers saved with [`Trainer::momentum`] and the step count.
    pub fn set_momentum(&mut self, m: &Weights, steps: u64) -> Result<()> {
        for p in &self.params {
            let t = m.expect(&p.name, &p.shape)?;
            let data = match p.rows {
                Some((r0, rows)) => &t.data[r0 * p.shape[1]..(r0 + rows) * p.shape[1]],
                None => &t.data[..],
            };
            self.gpu.write(&self.bufs[p.v], data);
        }
        self.step = steps;
        Ok(())
    }
}

impl Trainer<'_> {
    /// The forward configuration conv layer `layer` trains with (None for other layers).
    pub fn conv_tune(&self, layer: usize) -> Option<ConvTune> {
        Some(self.choices.get(&layer)?.conv()?.forward)
    }

    /// The FC variant FC layer `layer`'s forward trains with (None for other layers).
    pub fn linear_variant(&self, layer: usize) -> Option<LinearVariant> {
        self.choices.get(&layer)?.linear()
    }

    /// The nodes whose batch tensors pass one binding, so they run in groups of images:
    /// (name, images per group; the last group may have fewer).
    pub fn grouped(&self) -> &[(String, usize)] {
        &self.grouped
    }

    /// Bytes of every GPU buffer this trainer holds (the readback buffer included).
    pub fn allocated_bytes(&self) -> u64 {
        self.bufs.iter().map(|b| b.size()).sum::<u64>() + self.readback.size()
    }
}

/// A node whose buffers are not of its op's kind.
fn unchosen(node: &TrainNode) -> Error {
    Error::Shape(format!("{:?} was laid out for another op", node.at.op))
}
