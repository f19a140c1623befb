//! Training on the GPU: a step (forward keeping what backward needs, softmax cross-entropy,
//! backward, SGD with momentum and weight decay) over one or more micro-batches, recorded
//! into one command encoder and submitted once; the only host read is the per-image loss
//! and correctness. Weights stay in torchvision's canonical layout, where the optimizer and
//! the gradient kernels work; conv weights are repacked for the forward kernels once per
//! step on the GPU.

pub mod fit;

use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::{self, Kernel};
use crate::kernels::{
    batchnorm::ChannelAffine,
    conv::{Conv2d, ConvShape, ConvTune},
    linear::{row_chunks, Linear, LinearShape},
    lrn::Lrn,
    pool::MaxPool,
    Bound,
};
use crate::model::{Model, Op, Tensor, Weights, BN_EPS};

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
    /// The forward convolution variant of every layer [default: the adapter's].
    pub conv: Option<ConvTune>,
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
            conv: None,
        }
    }
}

/// A trainable tensor: weights, gradient and momentum buffers, by torchvision name.
struct Param {
    name: String,
    /// The whole tensor's shape; a weight split over bindings has one `Param` per row
    /// chunk, with `rows` saying which.
    shape: Vec<usize>,
    rows: Option<(usize, usize)>,
    w: usize,
    g: usize,
    v: usize,
}

impl Param {
    fn len(&self) -> usize {
        match self.rows {
            Some((_, rows)) => rows * self.shape[1],
            None => self.shape.iter().product(),
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
    first: Vec<Bound>,
    rest: Vec<Bound>,
    sgd: Vec<Bound>,
    input: usize,
    labels: usize,
    stats: usize,
    /// Whole-step staging: inputs, labels, stats of every micro-batch, and the readback.
    all_inputs: usize,
    all_labels: usize,
    all_stats: usize,
    readback: wgpu::Buffer,
    hyper: usize,
    /// Per dropout layer: (the step's seeds, one per micro-batch; the current seed).
    seeds: Vec<Vec<usize>>,
    /// The forward configuration of each conv layer, by layer index.
    conv_tunes: std::collections::BTreeMap<usize, ConvTune>,
    step: u64,
}

fn bytes(elems: usize) -> u64 {
    (elems.max(1) * 4) as u64
}

impl<'g> Trainer<'g> {
    /// Uploads `weights` (and zero momentum) for training `model`.
    pub fn new(gpu: &'g Gpu, model: &Model, weights: &Weights, opts: TrainOptions) -> Result<Self> {
        weights.validate(model)?;
        if opts.batch == 0 || opts.accumulate == 0 {
            return Err(Error::InvalidOption {
                option: "batch".into(),
                message: "batch size and accumulation steps must be at least 1".into(),
            });
        }
        let mut t = Trainer {
            gpu,
            model: model.clone(),
            opts,
            bufs: Vec::new(),
            params: Vec::new(),
            running: Vec::new(),
            bias_copies: Vec::new(),
            pack: Vec::new(),
            first: Vec::new(),
            rest: Vec::new(),
            sgd: Vec::new(),
            input: 0,
            labels: 0,
            stats: 0,
            all_inputs: 0,
            all_labels: 0,
            all_stats: 0,
            readback: gpu
                .readback_buffer("train stats", bytes(2 * opts.batch * opts.accumulate))?,
            hyper: 0,
            seeds: Vec::new(),
            conv_tunes: Default::default(),
            step: 0,
        };
        t.build(weights)?;
        Ok(t)
    }

    fn alloc(&mut self, label: &str, elems: usize) -> Result<usize> {
        self.bufs.push(self.gpu.alloc(label, bytes(elems))?);
        Ok(self.bufs.len() - 1)
    }

    fn upload(&mut self, label: &str, data: &[f32]) -> Result<usize> {
        self.bufs.push(self.gpu.upload(label, data)?);
        Ok(self.bufs.len() - 1)
    }

    fn param(&mut self, weights: &Weights, name: &str, shape: &[usize]) -> Result<usize> {
        self.param_rows(weights, name, shape, None)
    }

    /// A trainable tensor, or rows `row0 .. row0 + rows` of a [rows, cols] one.
    fn param_rows(
        &mut self,
        weights: &Weights,
        name: &str,
        shape: &[usize],
        rows: Option<(usize, usize)>,
    ) -> Result<usize> {
        let t = weights.expect(name, shape)?;
        let data = match rows {
            Some((r0, n)) => &t.data[r0 * shape[1]..(r0 + n) * shape[1]],
            None => &t.data[..],
        };
        let w = self.upload(name, data)?;
        let g = self.alloc("grad", data.len())?;
        let v = self.upload("momentum", &vec![0.0; data.len()])?;
        self.params.push(Param {
            name: name.into(),
            shape: shape.to_vec(),
            rows,
            w,
            g,
            v,
        });
        Ok(self.params.len() - 1)
    }

    fn grad_op(&self, op: Kernel, ids: &[usize]) -> Result<Bound> {
        let b: Vec<&wgpu::Buffer> = ids.iter().map(|&i| &self.bufs[i]).collect();
        let bg = op.bind(self.gpu, &b)?;
        Ok(Bound::Kernel(op, bg))
    }

    fn build(&mut self, weights: &Weights) -> Result<()> {
        let gpu = self.gpu;
        let (n, acc) = (self.opts.batch, self.opts.accumulate);
        let [c0, h0, w0] = self.model.input_dims();
        let in_len = c0 * h0 * w0;
        self.input = self.alloc("train input", n * in_len)?;
        self.labels = self.alloc("train labels", n)?;
        self.stats = self.alloc("train stats", 2 * n)?;
        self.all_inputs = self.alloc("step inputs", acc * n * in_len)?;
        self.all_labels = self.alloc("step labels", acc * n)?;
        self.all_stats = self.alloc("step stats", acc * 2 * n)?;
        self.hyper = self.alloc("hyperparameters", 3)?;
        let layers = self.model.layers().to_vec();
        let max_act = layers.iter().map(|l| l.output_len()).max().unwrap_or(1) * n;
        let grads = [
            self.alloc("grad a", max_act)?,
            self.alloc("grad b", max_act)?,
        ];
        // Forward: the buffer holding each layer's output (aliases for views).
        let mut act = Vec::with_capacity(layers.len());
        let mut saved: Vec<LayerSaved> = Vec::new();
        let mut cur = self.input;
        for (li, l) in layers.iter().enumerate() {
            let [c, h, w] = l.input;
            let out_len = n * l.output_len();
            let mut s = LayerSaved::default();
            match l.op {
                Op::Conv { c_in, c_out, k } => {
                    let pw =
                        self.param(weights, &format!("{}.weight", l.key), &[c_out, c_in, k, k])?;
                    let pb = self.param(weights, &format!("{}.bias", l.key), &[c_out])?;
                    let shape = ConvShape::new(n, c_in, c_out, h, w, k);
                    // The same choice as the executor's: inference and training run one
                    // configuration per layer.
                    let tune = kernels::conv::select(gpu, shape, self.opts.conv);
                    let (wl, bl) = tune.packed_elems(c_in, c_out, k);
                    let packed = self.alloc("packed weight", wl)?;
                    let packed_b = self.upload("packed bias", &vec![0.0; bl])?;
                    let (pw_id, pb_id) = (self.params[pw].w, self.params[pb].w);
                    self.bias_copies.push((pb_id, packed_b, bytes(c_out)));
                    let op = kernels::conv::pack(gpu, c_in, c_out, k, tune)?;
                    self.pack.push(self.grad_op(op, &[pw_id, packed])?);
                    let y = self.alloc("activation", out_len)?;
                    s.params = vec![pw, pb];
                    s.conv = Some((shape, tune));
                    self.conv_tunes.insert(li, tune);
                    s.extra = vec![packed, packed_b];
                    cur = y;
                }
                Op::BatchNorm { c: ch } => {
                    let pg = self.param(weights, &format!("{}.weight", l.key), &[ch])?;
                    let pbeta = self.param(weights, &format!("{}.bias", l.key), &[ch])?;
                    let rm_t = weights
                        .expect(&format!("{}.running_mean", l.key), &[ch])?
                        .data
                        .clone();
                    let rv_t = weights
                        .expect(&format!("{}.running_var", l.key), &[ch])?
                        .data
                        .clone();
                    let rm = self.upload("running mean", &rm_t)?;
                    let rv = self.upload("running var", &rv_t)?;
                    self.running
                        .push((format!("{}.running_mean", l.key), rm, ch));
                    self.running
                        .push((format!("{}.running_var", l.key), rv, ch));
                    let stats = self.alloc("bn stats", 2 * ch)?;
                    let sums = self.alloc("bn sums", 2 * ch)?;
                    let y = self.alloc("activation", out_len)?;
                    s.params = vec![pg, pbeta];
                    s.extra = vec![stats, sums, rm, rv];
                    cur = y;
                }
                Op::Relu => {
                    let ch = if l.flat() { l.output[0] } else { c };
                    let ones = self.upload("ones", &vec![1.0; ch])?;
                    let zeros = self.upload("zeros", &vec![0.0; ch])?;
                    s.extra = vec![ones, zeros];
                    cur = self.alloc("activation", out_len)?;
                }
                Op::Lrn(_) => cur = self.alloc("activation", out_len)?,
                Op::MaxPool => {
                    let y = self.alloc("activation", out_len)?;
                    s.extra = vec![self.alloc("argmax", out_len)?];
                    cur = y;
                }
                Op::AdaptiveAvgPool { h: oh, w: ow } => {
                    if (h, w) != (oh, ow) {
                        return Err(Error::InvalidOption {
                            option: "model".into(),
                            message: format!(
                                "training has no backward for an average pool from {h}x{w} to \
                                 {oh}x{ow}; use --avgpool none, or an input whose last map is \
                                 {oh}x{ow}"
                            ),
                        });
                    }
                }
                Op::Flatten => {}
                Op::Linear { k, n: n_out } => {
                    let max = self.opts.max_binding.unwrap_or(u64::MAX);
                    let chunks = row_chunks(gpu, k, n_out, max, crate::gpu::Precision::F32)?;
                    let name = format!("{}.weight", l.key);
                    let mut ps = Vec::new();
                    if chunks.len() == 1 {
                        ps.push(self.param(weights, &name, &[n_out, k])?);
                    } else {
                        for &rows in &chunks {
                            ps.push(self.param_rows(weights, &name, &[n_out, k], Some(rows))?);
                        }
                    }
                    ps.push(self.param(weights, &format!("{}.bias", l.key), &[n_out])?);
                    s.params = ps;
                    s.rows = chunks;
                    cur = self.alloc("activation", out_len)?;
                }
                Op::Dropout { p } => {
                    if self.opts.dropout && p > 0.0 {
                        // This step's seeds, one per micro-batch, and the current one.
                        let all = self.alloc("dropout seeds", acc)?;
                        let now = self.alloc("dropout seed", 1)?;
                        self.seeds.push(vec![all, now]);
                        s.extra = vec![now];
                        s.dropout = Some(p);
                        cur = self.alloc("activation", out_len)?;
                    }
                }
            }
            act.push(cur);
            saved.push(s);
        }
        let classes = self.model.classes();
        let logits = cur;
        let scale = 1.0 / (n * acc) as f32;
        for mb in 0..acc.min(2) {
            let accumulate = mb > 0;
            let mut merged = self.forward_kernels(&layers, &saved, &act)?;
            // Loss.
            let op = kernels::softmax::xent(gpu, n, classes, scale)?;
            merged.push(self.grad_op(op, &[logits, self.labels, grads[0], self.stats])?);
            // Backward.
            let mut g_cur = grads[0];
            let mut other = grads[1];
            for i in (0..layers.len()).rev() {
                let l = &layers[i];
                let x = if i == 0 { self.input } else { act[i - 1] };
                let y = act[i];
                let [c, h, w] = l.input;
                let hw = h * w;
                let needs_dx = i > 0;
                match l.op {
                    Op::Conv { c_in, c_out, k } => {
                        let shape = ConvShape::new(n, c_in, c_out, h, w, k);
                        let (pw, pb) = (
                            &self.params[saved[i].params[0]],
                            &self.params[saved[i].params[1]],
                        );
                        let (w_id, dw, db) = (pw.w, pw.g, pb.g);
                        let op = kernels::conv::wgrad(gpu, shape, accumulate)?;
                        merged.push(self.grad_op(op, &[x, g_cur, dw])?);
                        let op = kernels::elementwise::channel_sum(gpu, n, c_out, hw, accumulate)?;
                        merged.push(self.grad_op(op, &[g_cur, db])?);
                        if needs_dx {
                            let op = kernels::conv::dgrad(gpu, shape)?;
                            merged.push(self.grad_op(op, &[g_cur, w_id, other])?);
                            std::mem::swap(&mut g_cur, &mut other);
                        }
                    }
                    Op::BatchNorm { c: ch } => {
                        let (pg, pbeta) = (
                            &self.params[saved[i].params[0]],
                            &self.params[saved[i].params[1]],
                        );
                        let (g_w, dg, dbt) = (pg.w, pg.g, pbeta.g);
                        let (stats, sums) = (saved[i].extra[0], saved[i].extra[1]);
                        let op = kernels::batchnorm::backward_reduce(gpu, n, ch, hw, accumulate)?;
                        merged.push(self.grad_op(op, &[x, g_cur, stats, sums, dg, dbt])?);
                        let op = kernels::batchnorm::backward_apply(gpu, n, ch, hw)?;
                        merged.push(self.grad_op(op, &[x, g_cur, g_w, stats, sums, other])?);
                        std::mem::swap(&mut g_cur, &mut other);
                    }
                    Op::Relu => {
                        let op = kernels::elementwise::relu_backward(gpu, n * l.output_len())?;
                        merged.push(self.grad_op(op, &[y, g_cur, other])?);
                        std::mem::swap(&mut g_cur, &mut other);
                    }
                    Op::Lrn(p) => {
                        let op = kernels::lrn::backward(gpu, (n, c, h, w), p)?;
                        merged.push(self.grad_op(op, &[x, g_cur, other])?);
                        std::mem::swap(&mut g_cur, &mut other);
                    }
                    Op::MaxPool => {
                        let op = kernels::pool::backward(gpu, (n, c, h, w))?;
                        merged.push(self.grad_op(op, &[g_cur, saved[i].extra[0], other])?);
                        std::mem::swap(&mut g_cur, &mut other);
                    }
                    Op::AdaptiveAvgPool { .. } | Op::Flatten => {}
                    Op::Linear { k, n: n_out } => {
                        let shape = LinearShape { m: n, k, n_out };
                        let ps = &saved[i].params;
                        let db = self.params[ps[ps.len() - 1]].g;
                        for (j, &(row0, rows)) in saved[i].rows.iter().enumerate() {
                            let (w_id, dw) = (self.params[ps[j]].w, self.params[ps[j]].g);
                            let op = kernels::linear::dw(gpu, shape, row0, rows, accumulate)?;
                            merged.push(self.grad_op(op, &[x, g_cur, dw])?);
                            if needs_dx {
                                // Every chunk adds its rows' share of dx.
                                let op = kernels::linear::dx(gpu, shape, row0, rows, j > 0)?;
                                merged.push(self.grad_op(op, &[w_id, g_cur, other])?);
                            }
                        }
                        let op = kernels::elementwise::channel_sum(gpu, n, n_out, 1, accumulate)?;
                        merged.push(self.grad_op(op, &[g_cur, db])?);
                        if needs_dx {
                            std::mem::swap(&mut g_cur, &mut other);
                        }
                    }
                    Op::Dropout { .. } => {
                        if let Some(p) = saved[i].dropout {
                            let op =
                                kernels::elementwise::dropout(gpu, n * l.output_len(), p as f64)?;
                            merged.push(self.grad_op(op, &[g_cur, saved[i].extra[0], other])?);
                            std::mem::swap(&mut g_cur, &mut other);
                        }
                    }
                }
            }
            if mb == 0 {
                self.first = merged;
            } else {
                self.rest = merged;
            }
        }
        for i in 0..self.params.len() {
            let p = &self.params[i];
            let op = kernels::optim::sgd(gpu, p.len())?;
            let ids = [p.w, p.g, p.v, self.hyper];
            let k = self.grad_op(op, &ids)?;
            self.sgd.push(k);
        }
        Ok(())
    }

    fn forward_kernels(
        &self,
        layers: &[crate::model::Layer],
        saved: &[LayerSaved],
        act: &[usize],
    ) -> Result<Vec<Bound>> {
        let gpu = self.gpu;
        let n = self.opts.batch;
        let mut out = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let x = if i == 0 { self.input } else { act[i - 1] };
            let y = act[i];
            let [c, h, w] = l.input;
            let dims = (n, c, h, w);
            let ks: Option<Vec<Bound>> = match l.op {
                Op::Conv { .. } => {
                    let (shape, tune) = saved[i]
                        .conv
                        .ok_or_else(|| Error::Shape("conv shape".into()))?;
                    let conv = Conv2d::with_tune(gpu, shape, false, tune)?;
                    let params = crate::kernels::conv::ConvParams {
                        weight: self.bufs[saved[i].extra[0]].clone(),
                        bias: self.bufs[saved[i].extra[1]].clone(),
                    };
                    let bg = conv.bind(gpu, &self.bufs[x], &params, &self.bufs[y])?;
                    Some(vec![Bound::Conv(conv, bg)])
                }
                Op::BatchNorm { c: ch } => {
                    let hw = h * w;
                    let e = &saved[i].extra;
                    let (stats, rm, rv) = (e[0], e[2], e[3]);
                    let (g_id, b_id) = (
                        self.params[saved[i].params[0]].w,
                        self.params[saved[i].params[1]].w,
                    );
                    Some(vec![
                        self.grad_op(
                            kernels::batchnorm::stats(gpu, n, ch, hw, BN_EPS, 0.1)?,
                            &[x, stats, rm, rv],
                        )?,
                        self.grad_op(
                            kernels::batchnorm::apply(gpu, n, ch, hw, false)?,
                            &[x, g_id, b_id, stats, y],
                        )?,
                    ])
                }
                Op::Relu => {
                    let (ch, hw) = if l.flat() {
                        (l.output[0], 1)
                    } else {
                        (c, h * w)
                    };
                    let (ones, zeros) =
                        (&self.bufs[saved[i].extra[0]], &self.bufs[saved[i].extra[1]]);
                    let k = ChannelAffine::new(gpu, (n, ch, hw, 1), true)?;
                    let bg = k.bind(gpu, &self.bufs[x], ones, zeros, &self.bufs[y])?;
                    Some(vec![Bound::Affine(k, bg)])
                }
                Op::Lrn(p) => {
                    let k = Lrn::new(gpu, dims, p)?;
                    let bg = k.bind(gpu, &self.bufs[x], &self.bufs[y])?;
                    Some(vec![Bound::Lrn(k, bg)])
                }
                Op::MaxPool => {
                    let k = MaxPool::new(gpu, dims, true)?;
                    let bg = k.bind(
                        gpu,
                        &self.bufs[x],
                        &self.bufs[y],
                        Some(&self.bufs[saved[i].extra[0]]),
                    )?;
                    Some(vec![Bound::Pool(k, bg)])
                }
                Op::Linear { k, n: n_out } => {
                    let shape = LinearShape { m: n, k, n_out };
                    let max = self.opts.max_binding.unwrap_or(u64::MAX);
                    let lin = Linear::with_binding_limit(gpu, shape, false, max)?;
                    let ps = &saved[i].params;
                    let params = crate::kernels::linear::LinearParams {
                        chunks: ps[..ps.len() - 1]
                            .iter()
                            .map(|&p| self.bufs[self.params[p].w].clone())
                            .collect(),
                        bias: self.bufs[self.params[ps[ps.len() - 1]].w].clone(),
                    };
                    let bgs = lin.bind(gpu, &self.bufs[x], &params, &self.bufs[y])?;
                    Some(vec![Bound::Linear(lin, bgs)])
                }
                Op::Dropout { .. } => match saved[i].dropout {
                    Some(p) => {
                        let op = kernels::elementwise::dropout(gpu, n * l.output_len(), p as f64)?;
                        Some(vec![self.grad_op(op, &[x, saved[i].extra[0], y])?])
                    }
                    None => None,
                },
                Op::AdaptiveAvgPool { .. } | Op::Flatten => None,
            };
            out.extend(ks.into_iter().flatten());
        }
        Ok(out)
    }

    /// One optimisation step at learning rate `lr` over `batch * accumulate` images (NCHW)
    /// with their labels. One queue submission; reads back only per-image loss and
    /// correctness.
    pub fn step(&mut self, images: &Tensor, labels: &[u32], lr: f32) -> Result<StepStats> {
        let gpu = self.gpu;
        let (n, acc) = (self.opts.batch, self.opts.accumulate);
        let [c, h, w] = self.model.input_dims();
        let per = c * h * w;
        if images.shape != [n * acc, c, h, w] || labels.len() != n * acc {
            return Err(Error::Shape(format!(
                "a step takes {} images of {c}x{h}x{w} and as many labels, got {:?} and {}",
                n * acc,
                images.shape,
                labels.len()
            )));
        }
        let classes = self.model.classes() as u32;
        if let Some(l) = labels.iter().find(|l| **l >= classes) {
            return Err(Error::Shape(format!(
                "label {l} is not a class of {classes}"
            )));
        }
        gpu.queue.write_buffer(
            &self.bufs[self.all_inputs],
            0,
            bytemuck::cast_slice(&images.data),
        );
        gpu.queue
            .write_buffer(&self.bufs[self.all_labels], 0, bytemuck::cast_slice(labels));
        let hyper = [lr, self.opts.momentum, self.opts.weight_decay];
        gpu.queue
            .write_buffer(&self.bufs[self.hyper], 0, bytemuck::cast_slice(&hyper));
        for (j, ids) in self.seeds.iter().enumerate() {
            // A fresh mask per layer, micro-batch and step, reproducible from the seed.
            let v: Vec<u32> = (0..acc)
                .map(|mb| {
                    let k = ((self.step * acc as u64 + mb as u64) << 8) + j as u64;
                    crate::kernels::elementwise::dropout_bits(self.opts.seed as u32, k as u32)
                })
                .collect();
            gpu.queue
                .write_buffer(&self.bufs[ids[0]], 0, bytemuck::cast_slice(&v));
        }
        gpu.scoped("train step", || -> Result<()> {
            let mut enc = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("train step"),
                });
            for &(src, dst, b) in &self.bias_copies {
                enc.copy_buffer_to_buffer(&self.bufs[src], 0, &self.bufs[dst], 0, Some(b));
            }
            self.pass(&mut enc, &self.pack)?;
            for mb in 0..acc {
                let b_in = (n * per * 4) as u64;
                enc.copy_buffer_to_buffer(
                    &self.bufs[self.all_inputs],
                    mb as u64 * b_in,
                    &self.bufs[self.input],
                    0,
                    Some(b_in),
                );
                let b_l = (n * 4) as u64;
                enc.copy_buffer_to_buffer(
                    &self.bufs[self.all_labels],
                    mb as u64 * b_l,
                    &self.bufs[self.labels],
                    0,
                    Some(b_l),
                );
                for ids in &self.seeds {
                    enc.copy_buffer_to_buffer(
                        &self.bufs[ids[0]],
                        mb as u64 * 4,
                        &self.bufs[ids[1]],
                        0,
                        Some(4),
                    );
                }
                self.pass(&mut enc, if mb == 0 { &self.first } else { &self.rest })?;
                let b_s = (2 * n * 4) as u64;
                enc.copy_buffer_to_buffer(
                    &self.bufs[self.stats],
                    0,
                    &self.bufs[self.all_stats],
                    mb as u64 * b_s,
                    Some(b_s),
                );
            }
            self.pass(&mut enc, &self.sgd)?;
            enc.copy_buffer_to_buffer(
                &self.bufs[self.all_stats],
                0,
                &self.readback,
                0,
                Some((2 * n * acc * 4) as u64),
            );
            gpu.submit(enc.finish());
            Ok(())
        })??;
        let stats: Vec<f32> = gpu.map_read(&self.readback, "train step")?;
        self.step += 1;
        let rows = n * acc;
        let loss = stats[..2 * rows]
            .chunks(2)
            .map(|s| s[0] as f64)
            .sum::<f64>()
            / rows as f64;
        let correct = stats[..2 * rows].chunks(2).filter(|s| s[1] == 1.0).count();
        Ok(StepStats {
            loss,
            correct,
            images: rows,
        })
    }

    fn pass(&self, enc: &mut wgpu::CommandEncoder, ks: &[Bound]) -> Result<()> {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("train"),
            timestamp_writes: None,
        });
        for k in ks {
            k.encode(self.gpu, &mut pass)?;
        }
        Ok(())
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Every parameter's buffer `pick` (weights or momentum) read back and, for weights
    /// split over bindings, reassembled.
    fn gather(&self, pick: impl Fn(&Param) -> usize) -> Result<Weights> {
        let mut w = Weights::new();
        for p in &self.params {
            let data = self.gpu.read::<f32>(&self.bufs[pick(p)], p.len())?;
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
        let mut w = self.gather(|p| p.w)?;
        for (name, id, len) in &self.running {
            let data = self.gpu.read::<f32>(&self.bufs[*id], *len)?;
            w.insert(name, Tensor::new(vec![*len], data)?);
        }
        Ok(w)
    }

    /// The momentum buffers, by parameter name (for checkpoints).
    pub fn momentum(&self) -> Result<Weights> {
        self.gather(|p| p.v)
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

/// What the backward pass of a layer needs besides activations.
#[derive(Default)]
struct LayerSaved {
    params: Vec<usize>,
    /// conv: packed weight and bias; BN: stats, sums, running mean and var; ReLU: ones and
    /// zeros; max pool: argmax; dropout: the current seed.
    extra: Vec<usize>,
    /// conv: the shape and the forward configuration chosen for it.
    conv: Option<(ConvShape, ConvTune)>,
    dropout: Option<f32>,
    /// FC: the weight's row chunks (one per binding).
    rows: Vec<(usize, usize)>,
}

/// The demo's network: a small VGG for 28x28 digits (three blocks of 3x3 convs and max
/// pooling, one hidden FC layer with dropout).
pub const MNIST_MODEL: &str = "16,M,32,M,64,M";

pub fn mnist_model() -> Result<Model> {
    Model::parse(MNIST_MODEL)
        .and_then(|m| m.with_input(1, 28, 28))
        .and_then(|m| m.with_avgpool(None))
        .and_then(|m| m.with_hidden(&[128]))
        .and_then(|m| m.with_classes(10))
        .map(|m| {
            m.modified(|c| c.name = "mnist_vgg".into())
                .unwrap_or_else(|_| m.clone())
        })
}

/// The demo model's weights, trained by this engine (see the README for the command).
pub fn demo_weights() -> Result<Weights> {
    const BYTES: &[u8] = include_bytes!("mnist_vgg.safetensors");
    let what = std::path::Path::new("bundled mnist_vgg.safetensors");
    crate::io::weights::load_weights_bytes(BYTES, what, &mnist_model()?)
}

/// The GPU memory a [`Trainer`] allocates for `model` at these options, by kind, without a
/// device: what `vgg summary --train` prints. `tune` gives each conv layer's forward
/// configuration (`kernels::conv::select` on the device that will train).
pub fn memory_plan(
    model: &Model,
    opts: &TrainOptions,
    tune: impl Fn(ConvShape) -> ConvTune,
) -> Vec<(&'static str, u64)> {
    let (n, acc) = (opts.batch, opts.accumulate);
    let [c, h, w] = model.input_dims();
    let (mut params, mut packed, mut acts, mut small, mut max_act) =
        (0u64, 0u64, 0u64, 0u64, 1usize);
    let b = |e: usize| bytes(e);
    for l in model.layers() {
        let out = n * l.output_len();
        max_act = max_act.max(l.output_len());
        match l.op {
            Op::Conv { c_in, c_out, k } => {
                params += 3 * (b(c_out * c_in * k * k) + b(c_out));
                let [_, h, w] = l.input;
                let (wl, bl) =
                    tune(ConvShape::new(n, c_in, c_out, h, w, k)).packed_elems(c_in, c_out, k);
                packed += b(wl) + b(bl);
                acts += b(out);
            }
            Op::BatchNorm { c: ch } => {
                params += 3 * 2 * b(ch);
                small += 2 * b(ch) + 2 * b(2 * ch);
                acts += b(out);
            }
            Op::Relu => {
                let ch = if l.flat() { l.output[0] } else { l.input[0] };
                small += 2 * b(ch);
                acts += b(out);
            }
            Op::Lrn(_) => acts += b(out),
            Op::MaxPool => acts += 2 * b(out),
            Op::Linear { k, n: no } => {
                params += 3 * (b(no * k) + b(no));
                acts += b(out);
            }
            Op::Dropout { p } if opts.dropout && p > 0.0 => {
                small += b(acc) + b(1);
                acts += b(out);
            }
            _ => {}
        }
    }
    let io = b(n * c * h * w)
        + b(n)
        + b(2 * n)
        + b(acc * n * c * h * w)
        + b(acc * n)
        + b(acc * 2 * n)
        + b(3);
    vec![
        ("weights, gradients and momentum", params),
        ("conv weights packed for the forward kernels", packed),
        ("activations kept for the backward pass", acts),
        ("gradient ping-pong buffers", 2 * b(n * max_act)),
        ("batch norm statistics, ReLU and dropout constants", small),
        ("inputs, labels and losses of the step", io),
    ]
}

impl Trainer<'_> {
    /// The forward configuration conv layer `layer` trains with (None for other layers).
    pub fn conv_tune(&self, layer: usize) -> Option<ConvTune> {
        self.conv_tunes.get(&layer).copied()
    }

    /// Bytes of every GPU buffer this trainer holds (the readback buffer included).
    pub fn allocated_bytes(&self) -> u64 {
        self.bufs.iter().map(|b| b.size()).sum::<u64>() + self.readback.size()
    }
}
