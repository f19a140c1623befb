//! A model on the GPU: weights uploaded once, a plan per (batch, outputs), and a forward
//! pass recorded into one command encoder and submitted once.

use super::choice::{Choose, NodeChoice, Numerics};
use super::lower::{At, Binds, Lowering};
use super::plan::{plan, Limits, Plan};
use super::{Graph, NodeOp, TensorId};
use crate::error::{Error, Result};
use crate::gpu::{blocking, Gpu, Precision};
use crate::kernels::batchnorm::BatchNorm;
use crate::kernels::conv::{ConvParams, ConvShape, ConvTune};
use crate::kernels::linear::{row_chunks, LinearParams, LinearVariant};
use crate::kernels::Bound;
use crate::model::{Model, Op, Tensor, Weights, BN_EPS};
use std::collections::BTreeMap;

/// Knobs for tests and constrained setups; the defaults come from the adapter.
#[derive(Clone, Debug, Default)]
pub struct NetworkOptions {
    /// Plan as if one storage binding held at most this many bytes (below the adapter's
    /// limit), to exercise the batch split on small shapes.
    pub max_binding: Option<u64>,
    /// Total bytes the network may use (weights and activations), below what the adapter
    /// reports.
    pub memory_limit: Option<u64>,
    /// Convolution variant and tunables for every conv layer. When `None`, each layer
    /// takes what `vgg bench --tune` stored for its shape on this adapter, else the
    /// adapter's default.
    pub conv: Option<ConvTune>,
    /// How weights and activations are stored on the GPU (f16 needs SHADER_F16).
    pub precision: Precision,
    /// The FC variant of every FC layer. When `None`, each takes what `vgg bench --tune`
    /// stored for its shape on this adapter, else the adapter's default.
    pub linear: Option<LinearVariant>,
}

/// A plan made real: buffers, kernels per (stage, chunk size), and the readback buffer.
struct Prepared {
    batch: usize,
    outputs: Vec<String>,
    dense: bool,
    graph: Graph,
    plan: Plan,
    slots: Vec<wgpu::Buffer>,
    readback: wgpu::Buffer,
    /// Per stage: the kernels for each chunk size the stage runs at.
    programs: Vec<BTreeMap<usize, Vec<Bound>>>,
    /// Ones and zeros for ReLUs run as a channel affine map, kept alive here.
    _identity: Vec<wgpu::Buffer>,
    /// The FC variant each FC layer runs in (at the plan's largest group).
    linear_variants: BTreeMap<usize, LinearVariant>,
}

/// A model with its weights resident on one GPU.
pub struct Network<'g> {
    gpu: &'g Gpu,
    model: Model,
    tune: ConvTune,
    precision: Precision,
    /// How the nodes choose their variants (from the adapter, the precision, and the conv
    /// configuration and FC variant the options fix for every layer), made once here and
    /// read by the upload and by each plan.
    choose: Choose<'g>,
    limits: Limits,
    memory_limit: Option<u64>,
    /// Per conv layer: its tunables and its weights packed for them.
    convs: BTreeMap<usize, (ConvTune, ConvParams)>,
    linears: BTreeMap<usize, LinearParams>,
    weight_bytes: u64,
    prepared: Option<Prepared>,
}

/// Bytes of the GPU copies of a model's weights stored as `precision` with each conv
/// layer's tunables as `select` chooses them (packed conv weights are padded to whole
/// channel blocks, and Winograd's are 4x larger and always f32; batch norm folds into its
/// conv).
pub fn weight_bytes(
    model: &Model,
    precision: Precision,
    select: impl Fn(ConvShape) -> ConvTune,
) -> u64 {
    let e = precision.bytes() as u64;
    model
        .layers()
        .iter()
        .map(|l| match l.op {
            Op::Conv { c_in, c_out, k } => {
                let [_, h, w] = l.output;
                let tune = select(ConvShape::new(1, c_in, c_out, h, w, k));
                let (w, b) = tune.packed_elems(c_in, c_out, k);
                w as u64 * tune.weight_precision(precision).bytes() as u64 + b as u64 * e
            }
            Op::Linear { .. } => l.params() * e,
            _ => 0,
        })
        .sum()
}

impl<'g> Network<'g> {
    /// Checks `weights` against `model` and uploads them.
    pub fn new(gpu: &'g Gpu, model: &Model, weights: &Weights) -> Result<Network<'g>> {
        Network::with_options(gpu, model, weights, NetworkOptions::default())
    }

    pub fn with_options(
        gpu: &'g Gpu,
        model: &Model,
        weights: &Weights,
        opts: NetworkOptions,
    ) -> Result<Network<'g>> {
        weights.validate(model)?;
        let precision = opts.precision;
        if precision == Precision::F16 && !gpu.features().contains(wgpu::Features::SHADER_F16) {
            return Err(Error::Limit(format!(
                "f16 precision needs the shader-f16 feature, which {} lacks; use f32",
                gpu.info().name
            )));
        }
        let tune = opts.conv.unwrap_or_else(|| ConvTune::default_for(gpu));
        let max_binding = opts
            .max_binding
            .unwrap_or(u64::MAX)
            .min(gpu.max_binding_bytes());
        let limits = Limits {
            max_binding,
            max_buffer: gpu.limits().max_buffer_size,
        };
        let choose = Choose {
            gpu,
            numerics: Numerics::inference(precision),
            conv: opts.conv,
            linear: opts.linear,
        };
        let select = |s| choose.conv(s);
        let need = weight_bytes(model, precision, select);
        if let Some(avail) = available(gpu, opts.memory_limit) {
            if need > avail {
                return Err(Error::Limit(format!(
                    "{}'s weights need {need} bytes on the GPU, {avail} bytes are available",
                    model.name()
                )));
            }
        }
        let layers = model.layers();
        let mut convs = BTreeMap::new();
        let mut linears = BTreeMap::new();
        let get = |name: String| -> Result<&[f32]> {
            Ok(&weights
                .get(&name)
                .ok_or_else(|| Error::Shape(format!("weights have no tensor '{name}'")))?
                .data)
        };
        for (i, l) in layers.iter().enumerate() {
            let key = &l.key;
            match l.op {
                Op::Conv { c_in, c_out, k } => {
                    let (w, b) = (get(format!("{key}.weight"))?, get(format!("{key}.bias"))?);
                    let folded;
                    let (w, b) = match layers.get(i + 1) {
                        Some(bn) if matches!(bn.op, Op::BatchNorm { .. }) => {
                            let k = &bn.key;
                            let norm = BatchNorm {
                                gamma: get(format!("{k}.weight"))?.to_vec(),
                                beta: get(format!("{k}.bias"))?.to_vec(),
                                mean: get(format!("{k}.running_mean"))?.to_vec(),
                                var: get(format!("{k}.running_var"))?.to_vec(),
                                eps: BN_EPS,
                            };
                            folded = norm.fold_into_conv(w, b)?;
                            (&folded.0[..], &folded.1[..])
                        }
                        _ => (w, b),
                    };
                    let [_, h, wd] = l.output;
                    let shape = ConvShape::new(1, c_in, c_out, h, wd, k);
                    let t = select(shape);
                    let p = t.upload(gpu, (c_in, c_out, k), (w, b), precision)?;
                    convs.insert(i, (t, p));
                }
                Op::Linear { k, n } => {
                    let rows = row_chunks(gpu, k, n, limits.max_binding, precision)?;
                    let (w, b) = (get(format!("{key}.weight"))?, get(format!("{key}.bias"))?);
                    let p = LinearParams::upload(gpu, k, n, &rows, w, b, precision)?;
                    linears.insert(i, p);
                }
                _ => {}
            }
        }
        Ok(Network {
            gpu,
            model: model.clone(),
            tune,
            precision,
            choose,
            limits,
            memory_limit: opts.memory_limit,
            convs,
            linears,
            weight_bytes: need,
            prepared: None,
        })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }
    pub fn gpu(&self) -> &Gpu {
        self.gpu
    }
    /// Bytes of weights on the GPU.
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }
    /// The conv tunables of layer `layer` (the network default for other layers).
    pub fn conv_tune(&self, layer: usize) -> ConvTune {
        self.convs.get(&layer).map_or(self.tune, |c| c.0)
    }
    pub fn precision(&self) -> Precision {
        self.precision
    }
    /// The FC variant layer `layer` runs in under the current plan (None before a forward
    /// has planned, or for other layers).
    pub fn linear_variant(&self, layer: usize) -> Option<LinearVariant> {
        self.prepared.as_ref()?.linear_variants.get(&layer).copied()
    }
    /// The limits plans are made under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The plan a forward at `batch` returning `outputs` would use, without allocating it.
    pub fn plan(&self, batch: usize, outputs: &[&str]) -> Result<Plan> {
        let graph = Graph::build(&self.model, outputs)?.with_precision(self.precision);
        plan(&graph, batch, self.limits, self.budget())
    }

    fn budget(&self) -> Option<u64> {
        // On a CPU adapter the weights already came out of the host memory now reported.
        let resident = if self.gpu.is_cpu() && self.memory_limit.is_none() {
            0
        } else {
            self.weight_bytes
        };
        available(self.gpu, self.memory_limit).map(|a| a.saturating_sub(resident))
    }

    /// Class scores (the last layer's output), [n, classes], for input [n, c, h, w].
    pub fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        blocking(self.forward_async(input))
    }

    /// [`Network::forward`] as a future: what a browser page awaits (each blocking forward
    /// of the executor has its `_async` form).
    pub async fn forward_async(&mut self, input: &Tensor) -> Result<Tensor> {
        let last = self.model.layers().len() - 1;
        let name = self.model.layers()[last].name.clone();
        self.forward_features_async(input, &name).await
    }

    /// The output of one named layer (pool5, relu5_3, fc7, ...; or [`super::PROB`] for the
    /// softmax of the last layer).
    /// Only the layers up to it run.
    pub fn forward_features(&mut self, input: &Tensor, layer: &str) -> Result<Tensor> {
        blocking(self.forward_features_async(input, layer))
    }

    /// [`Network::forward_features`] as a future.
    pub async fn forward_features_async(&mut self, input: &Tensor, layer: &str) -> Result<Tensor> {
        let mut out = self.run_async(input, &[layer]).await?;
        out.pop()
            .ok_or_else(|| Error::Shape("the forward returned no output".into()))
    }

    /// Switches to another input size with the same weights (they do not depend on it as
    /// long as the model has its average pool, which keeps the classifier's input fixed).
    pub fn set_input_size(&mut self, h: usize, w: usize) -> Result<()> {
        let c = self.model.config().in_channels;
        if self.model.config().input == (h, w) {
            return Ok(());
        }
        let m = self.model.with_input(c, h, w)?;
        let same = m
            .layers()
            .iter()
            .zip(self.model.layers())
            .all(|(a, b)| a.tensors() == b.tensors());
        if !same {
            return Err(Error::Shape(format!(
                "{} at {h}x{w} would need other weights (its classifier input changes with the \
                 input size without an average pool)",
                self.model.name()
            )));
        }
        self.model = m;
        self.prepared = None;
        Ok(())
    }

    /// Dense evaluation (the paper's): class scores at every position of the last feature
    /// map, [n, positions, classes], for input [n, c, h, w] at the current input size.
    pub fn forward_dense(&mut self, input: &Tensor) -> Result<Tensor> {
        blocking(self.forward_dense_async(input))
    }

    /// [`Network::forward_dense`] as a future.
    pub async fn forward_dense_async(&mut self, input: &Tensor) -> Result<Tensor> {
        self.check_input(input)?;
        let batch = input.shape[0];
        let last = self.model.layers()[self.model.layers().len() - 1]
            .name
            .clone();
        let stale = self
            .prepared
            .as_ref()
            .is_none_or(|p| p.batch != batch || !p.dense);
        if stale {
            self.prepared = None;
            let graph = Graph::build_dense(&self.model)?.with_precision(self.precision);
            self.prepared = Some(self.build(batch, &[&last], graph, true)?);
        }
        let Some(p) = self.prepared.as_ref() else {
            return Err(Error::Shape("no plan".into()));
        };
        let mut out = self.encode_and_read(p, input).await?;
        out.pop()
            .ok_or_else(|| Error::Shape("the forward returned no output".into()))
    }

    fn check_input(&self, input: &Tensor) -> Result<()> {
        let [c, h, w] = self.model.input_dims();
        if input.shape.len() != 4 || input.shape[1..] != [c, h, w] || input.shape[0] == 0 {
            return Err(Error::Shape(format!(
                "input of shape {:?}; {} takes [n, {c}, {h}, {w}] with n >= 1",
                input.shape,
                self.model.name()
            )));
        }
        Ok(())
    }

    /// Runs the layers needed for `outputs` and returns them in that order. One command
    /// encoder and one queue submit; the outputs are the only data read back.
    pub fn run(&mut self, input: &Tensor, outputs: &[&str]) -> Result<Vec<Tensor>> {
        blocking(self.run_async(input, outputs))
    }

    /// [`Network::run`] as a future.
    pub async fn run_async(&mut self, input: &Tensor, outputs: &[&str]) -> Result<Vec<Tensor>> {
        self.check_input(input)?;
        self.prepare(input.shape[0], outputs)?;
        let Some(p) = self.prepared.as_ref() else {
            return Err(Error::Shape("no plan".into()));
        };
        self.encode_and_read(p, input).await
    }

    /// Plans and allocates for a forward at `batch` returning `outputs` (a forward does it
    /// when the batch or outputs change); returns the plan.
    pub fn prepare(&mut self, batch: usize, outputs: &[&str]) -> Result<&Plan> {
        let stale = self
            .prepared
            .as_ref()
            .is_none_or(|p| p.batch != batch || p.outputs != outputs || p.dense);
        if stale {
            // Free the old plan's buffers before allocating the new one.
            self.prepared = None;
            let graph = Graph::build(&self.model, outputs)?.with_precision(self.precision);
            self.prepared = Some(self.build(batch, outputs, graph, false)?);
        }
        match &self.prepared {
            Some(p) => Ok(&p.plan),
            None => Err(Error::Shape("no plan".into())),
        }
    }

    /// Fills every activation buffer of the current plan with NaN, so a test sees any
    /// element a forward fails to write.
    pub fn poison(&self) {
        if let Some(p) = &self.prepared {
            for s in &p.slots {
                self.gpu.poison(s);
            }
        }
    }

    fn build(&self, batch: usize, outputs: &[&str], graph: Graph, dense: bool) -> Result<Prepared> {
        let gpu = self.gpu;
        let plan = plan(&graph, batch, self.limits, self.budget())?;
        let slots = plan
            .slots
            .iter()
            .enumerate()
            .map(|(i, &b)| gpu.alloc(&format!("activation slot {i}"), b))
            .collect::<Result<Vec<_>>>()?;
        let readback = gpu.readback_buffer("forward outputs", plan.readback)?;
        let mut identity = Vec::new();
        let mut programs = Vec::new();
        let mut linear_variants = BTreeMap::new();
        for (si, stage) in plan.stages.iter().enumerate() {
            let mut by_size = BTreeMap::new();
            let mut sizes = plan.chunks(si);
            sizes.dedup();
            for n in sizes {
                let mut kernels = Vec::new();
                for node in &graph.nodes[stage.nodes.clone()] {
                    let place = |t: TensorId| -> Result<&wgpu::Buffer> {
                        let p = if plan.chunked(si) {
                            plan.local.get(&(t, si))
                        } else {
                            plan.full[t].as_ref()
                        };
                        p.map(|p| &slots[p.slot]).ok_or_else(|| {
                            Error::Shape(format!("tensor {t} has no place in stage {si}"))
                        })
                    };
                    let xy = (place(node.input)?, place(node.output)?);
                    let at = At {
                        op: node.op,
                        n,
                        input: graph.tensors[node.input].dims,
                        output: graph.tensors[node.output].dims,
                    };
                    let choice = self.choose.node(&at, false);
                    if let (NodeOp::Linear { layer, .. }, NodeChoice::Linear(v)) = (node.op, choice)
                    {
                        linear_variants.insert(layer, v);
                    }
                    kernels.extend(self.kernels(at, choice, xy, &mut identity)?);
                }
                by_size.insert(n, kernels);
            }
            programs.push(by_size);
        }
        Ok(Prepared {
            batch,
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            dense,
            graph,
            plan,
            slots,
            readback,
            programs,
            _identity: identity,
            linear_variants,
        })
    }

    /// A node's forward kernels through the shared lowering, with this network's weights
    /// and the node's `choice`.
    fn kernels(
        &self,
        at: At,
        choice: NodeChoice,
        (x, y): (&wgpu::Buffer, &wgpu::Buffer),
        identity: &mut Vec<wgpu::Buffer>,
    ) -> Result<Vec<Bound>> {
        let gpu = self.gpu;
        let lower = Lowering {
            gpu,
            model: &self.model,
            numerics: self.choose.numerics,
            max_binding: self.limits.max_binding,
        };
        match at.op {
            NodeOp::Conv { layer, .. } => {
                let (tune, params) = self.convs.get(&layer).ok_or_else(|| missing(layer))?;
                let b = Binds::Conv {
                    tune: *tune,
                    weight: &params.weight,
                    bias: &params.bias,
                };
                lower.forward(&at, x, y, &b)
            }
            NodeOp::Linear { layer, .. } => {
                let params = self.linears.get(&layer).ok_or_else(|| missing(layer))?;
                let NodeChoice::Linear(variant) = choice else {
                    return Err(Error::Shape(format!("{:?} chose no FC variant", at.op)));
                };
                let b = Binds::Linear {
                    chunks: params.chunks.iter().collect(),
                    bias: &params.bias,
                    variant,
                };
                lower.forward(&at, x, y, &b)
            }
            NodeOp::Relu => {
                let c = at.input[0];
                let scale = gpu.upload_as("relu scale", &vec![1.0f32; c], self.precision)?;
                let shift = gpu.upload_as("relu shift", &vec![0.0f32; c], self.precision)?;
                let b = Binds::Relu {
                    scale: &scale,
                    shift: &shift,
                };
                let ks = lower.forward(&at, x, y, &b)?;
                identity.extend([scale, shift]);
                Ok(ks)
            }
            _ => lower.forward(&at, x, y, &Binds::Plain),
        }
    }

    /// Records the forward into one encoder, submits it once and reads the outputs back
    /// when the GPU is done.
    async fn encode_and_read(&self, p: &Prepared, input: &Tensor) -> Result<Vec<Tensor>> {
        let gpu = self.gpu;
        let plan = &p.plan;
        let t = &p.graph.tensors;
        let input_place = plan.full[0]
            .ok_or_else(|| Error::Shape("the input has no place in the plan".into()))?;
        let mut bytes = self.precision.encode(&input.data);
        // Queue writes move whole 4-byte words; the slot is allocated in whole words.
        bytes.resize(bytes.len().next_multiple_of(4), 0);
        gpu.queue
            .write_buffer(&p.slots[input_place.slot], 0, &bytes);
        let producers = p.graph.producers();
        let stage_of_tensor = |id: TensorId| producers[id].map(|n| plan.stage_of(n));
        gpu.scoped("forward", || -> Result<()> {
            let mut enc = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("forward"),
                });
            for (si, stage) in plan.stages.iter().enumerate() {
                let chunked = plan.chunked(si);
                for (ci, n) in plan.chunks(si).into_iter().enumerate() {
                    let b0 = ci * stage.chunk;
                    let locals = plan.local.iter().filter(|((_, s), _)| *s == si);
                    if chunked {
                        // Tensors from earlier stages: this group's images into the local copy.
                        for (&(id, _), place) in locals.clone() {
                            if stage_of_tensor(id) != Some(si) {
                                let full = plan.full[id].ok_or_else(|| no_full(id))?;
                                let img = t[id].image_bytes();
                                enc.copy_buffer_to_buffer(
                                    &p.slots[full.slot],
                                    b0 as u64 * img,
                                    &p.slots[place.slot],
                                    0,
                                    Some(n as u64 * img),
                                );
                            }
                        }
                    }
                    {
                        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: Some("forward"),
                            timestamp_writes: None,
                        });
                        let kernels = p.programs[si]
                            .get(&n)
                            .ok_or_else(|| Error::Shape(format!("no program for {n} images")))?;
                        for k in kernels {
                            k.encode(gpu, &mut pass)?;
                        }
                    }
                    if chunked {
                        // Tensors later stages or the caller need: out to the full tensor.
                        for (&(id, _), place) in locals {
                            if stage_of_tensor(id) == Some(si) {
                                if let Some(full) = plan.full[id] {
                                    let img = t[id].image_bytes();
                                    enc.copy_buffer_to_buffer(
                                        &p.slots[place.slot],
                                        0,
                                        &p.slots[full.slot],
                                        b0 as u64 * img,
                                        Some(n as u64 * img),
                                    );
                                }
                            }
                        }
                    }
                }
            }
            let mut off = 0;
            for (id, _, _) in &p.graph.outputs {
                let full = plan.full[*id].ok_or_else(|| no_full(*id))?;
                // Copies move whole 4-byte words; slots are allocated in whole words too.
                let bytes = (t[*id].image_bytes() * p.batch as u64).next_multiple_of(4);
                enc.copy_buffer_to_buffer(&p.slots[full.slot], 0, &p.readback, off, Some(bytes));
                off += bytes;
            }
            gpu.submit(enc.finish());
            Ok(())
        })??;
        let bytes: Vec<u8> = gpu.map_read_async(&p.readback, "forward").await?;
        let mut out = Vec::new();
        let mut off = 0;
        for (id, shape, _) in &p.graph.outputs {
            let len = (t[*id].image_bytes() * p.batch as u64) as usize;
            let mut s = vec![p.batch];
            s.extend(shape);
            out.push(Tensor::new(
                s,
                self.precision.decode(&bytes[off..off + len]),
            )?);
            off += len.next_multiple_of(4);
        }
        Ok(out)
    }
}

/// Bytes the adapter can give (see `Gpu::memory_available`), capped by a user limit.
fn available(gpu: &Gpu, limit: Option<u64>) -> Option<u64> {
    match (gpu.memory_available(), limit) {
        (Some(a), Some(l)) => Some(a.min(l)),
        (a, l) => a.or(l),
    }
}

fn missing(layer: usize) -> Error {
    Error::Shape(format!("no weights uploaded for layer {layer}"))
}

fn no_full(id: TensorId) -> Error {
    Error::Shape(format!("tensor {id} is not held at the full batch"))
}
