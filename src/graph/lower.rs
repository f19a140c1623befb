//! The one lowering of a graph node to GPU work, shared by the executor ([`super::Network`])
//! and the trainer: [`Lowering::forward`] gives a node's forward kernels and
//! [`Lowering::backward`] its backward kernels. Both callers build their nodes with
//! [`super::Graph`] (the trainer with [`super::Graph::build_train`]), so training runs the
//! same fused, tuned forward kernels as inference; what differs is only which buffers a
//! node binds, which each caller owns and hands over as [`Binds`] and [`Grads`].

use super::choice::Numerics;
use super::NodeOp;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::kernels::conv::{Conv2d, ConvParams, ConvShape, ConvTune, ConvVariant};
use crate::kernels::linear::{Linear, LinearParams, LinearShape, LinearVariant};
use crate::kernels::Nchw;
use crate::kernels::{self, Bound, Kernel};
use crate::model::{Dims, Model, Op, BN_EPS};
use wgpu::Buffer;

/// What a node's forward kernels bind besides its input and output, by op. `B` is the
/// buffer handle: `&Buffer` where the lowering binds, or an index into the caller's
/// buffer list (the trainer lays its nodes out before it allocates; `map` turns the one
/// into the other).
#[derive(Clone, Debug)]
pub enum Binds<B> {
    /// Max pool without indices, LRN, average pool, im2col, softmax.
    Plain,
    /// The weights packed for `tune` (`ConvParams`).
    Conv { tune: ConvTune, weight: B, bias: B },
    /// One weight buffer per row chunk (`LinearParams`), run as `variant`.
    Linear {
        chunks: Vec<B>,
        bias: B,
        variant: LinearVariant,
    },
    /// A ReLU not fused into its producer, run as the identity channel map then max(0, x).
    Relu { scale: B, shift: B },
    /// Training's batch norm: batch statistics into `stats` (mean, 1/std per channel), the
    /// running statistics updated, then the affine map.
    BatchNorm {
        gamma: B,
        beta: B,
        stats: B,
        running_mean: B,
        running_var: B,
        /// The running statistics' update rate: torchvision's 0.1, or 0 for a frozen
        /// layer, whose statistics stay bitwise as loaded.
        momentum: f32,
    },
    /// Training's max pool: the index of each window's maximum, for the backward pass.
    MaxPool { argmax: B },
    /// Training's dropout: the current micro-batch's seed (the mask is regenerated from it
    /// in the backward pass, not stored).
    Dropout { seed: B },
}

impl<B: Copy> Binds<B> {
    /// The same binds over other handles.
    pub fn map<C>(&self, f: impl Fn(B) -> C) -> Binds<C> {
        match self {
            Binds::Plain => Binds::Plain,
            Binds::Conv { tune, weight, bias } => Binds::Conv {
                tune: *tune,
                weight: f(*weight),
                bias: f(*bias),
            },
            Binds::Linear {
                chunks,
                bias,
                variant,
            } => Binds::Linear {
                chunks: chunks.iter().map(|c| f(*c)).collect(),
                bias: f(*bias),
                variant: *variant,
            },
            Binds::Relu { scale, shift } => Binds::Relu {
                scale: f(*scale),
                shift: f(*shift),
            },
            Binds::BatchNorm {
                gamma,
                beta,
                stats,
                running_mean,
                running_var,
                momentum,
            } => Binds::BatchNorm {
                gamma: f(*gamma),
                beta: f(*beta),
                stats: f(*stats),
                running_mean: f(*running_mean),
                running_var: f(*running_var),
                momentum: *momentum,
            },
            Binds::MaxPool { argmax } => Binds::MaxPool { argmax: f(*argmax) },
            Binds::Dropout { seed } => Binds::Dropout { seed: f(*seed) },
        }
    }
}

/// What a node's backward kernels write besides the input gradient: its parameters'
/// gradients, with the weights the input gradient needs; `B` as for [`Binds`].
#[derive(Clone, Debug)]
pub enum Grads<B> {
    None,
    Conv {
        /// The weights in torchvision's layout [c_out, c_in, k, k] (not the packed copy).
        weight: B,
        dw: B,
        db: B,
        /// The input gradient's configuration and weight (`conv::flip`, packed for it) with
        /// a zero bias: dx runs as a forward conv of dy on the fast kernels. None for the
        /// first layer, which needs no dx.
        flipped: Option<(ConvTune, B, B)>,
        /// Room for the weight gradient's partial sums where it splits the pixels
        /// (`conv::backward_weight::partial_len`), shared by every conv of a step.
        partials: B,
    },
    BatchNorm {
        dgamma: B,
        dbeta: B,
        /// Scratch: per-channel sums of the reduction pass.
        sums: B,
    },
    Linear {
        /// Per row chunk of the weight (one per binding): (first row, rows, weight, dw).
        chunks: Vec<(usize, usize, B, B)>,
        db: B,
    },
}

impl<B: Copy> Grads<B> {
    /// The same gradients over other handles.
    pub fn map<C>(&self, f: impl Fn(B) -> C) -> Grads<C> {
        match self {
            Grads::None => Grads::None,
            Grads::Conv {
                weight,
                dw,
                db,
                flipped,
                partials,
            } => Grads::Conv {
                weight: f(*weight),
                dw: f(*dw),
                db: f(*db),
                flipped: flipped.map(|(t, w, b)| (t, f(w), f(b))),
                partials: f(*partials),
            },
            Grads::BatchNorm {
                dgamma,
                dbeta,
                sums,
            } => Grads::BatchNorm {
                dgamma: f(*dgamma),
                dbeta: f(*dbeta),
                sums: f(*sums),
            },
            Grads::Linear { chunks, db } => Grads::Linear {
                chunks: chunks
                    .iter()
                    .map(|&(r0, r, w, g)| (r0, r, f(w), f(g)))
                    .collect(),
                db: f(*db),
            },
        }
    }
}

/// Which gradients a node's backward pass computes.
#[derive(Clone, Copy, Debug)]
pub struct Flow {
    /// Its parameters' (off for a frozen layer, whose weights stay as loaded).
    pub params: bool,
    /// Its input's (off for the first layer that trains: nothing below needs it).
    pub dx: bool,
    /// Parameter gradients add to what an earlier micro-batch (or group of images) left
    /// instead of replacing it.
    pub accumulate: bool,
    /// The images of the whole batch, where the node runs on a group of them at a time
    /// (`At::n` of them): reductions over the batch are ordered by it, so the groups' sums
    /// add up to the whole batch's bit for bit.
    pub batch: usize,
}

/// The gradient flowing back: `cur` holds dL/d(output) of the node being lowered; a kernel
/// writes the next gradient to `other`, then the two swap.
pub struct PingPong<'b> {
    pub cur: &'b Buffer,
    pub other: &'b Buffer,
    swaps: usize,
}

impl<'b> PingPong<'b> {
    pub fn new(cur: &'b Buffer, other: &'b Buffer) -> Self {
        PingPong {
            cur,
            other,
            swaps: 0,
        }
    }

    /// How often the two swapped: odd where the gradient now sits in the other buffer.
    pub fn swaps(&self) -> usize {
        self.swaps
    }

    fn swap(&mut self) {
        std::mem::swap(&mut self.cur, &mut self.other);
        self.swaps += 1;
    }
}

/// One node as the lowering sees it: the op, the batch it runs at and its per-image
/// input and output shapes (from the graph's tensors).
#[derive(Clone, Copy, Debug)]
pub struct At {
    pub op: NodeOp,
    pub n: usize,
    pub input: Dims,
    pub output: Dims,
}

impl At {
    /// A conv node's shape: channels from its tensors, the kernel from its op; None for any
    /// other op.
    pub fn conv_shape(&self) -> Option<ConvShape> {
        match self.op {
            NodeOp::Conv { k, .. } => Some(self.conv(k)),
            _ => None,
        }
    }

    /// The conv shape of this node with kernel size `k` (what a `NodeOp::Conv` carries).
    pub(crate) fn conv(&self, k: usize) -> ConvShape {
        let [c_in, h, w] = self.input;
        ConvShape::new(self.n, c_in, self.output[0], h, w, k)
    }

    /// An FC node's shape: its rows are the batch's images (times dense evaluation's window
    /// positions), its inputs per row from its op; None for any other op.
    pub fn linear_shape(&self) -> Option<LinearShape> {
        let NodeOp::Linear { k, .. } = self.op else {
            return None;
        };
        let rows = (self.input.iter().product::<usize>() / k.max(1)).max(1);
        Some(LinearShape {
            m: self.n * rows,
            k,
            n_out: self.output.iter().product::<usize>() / rows,
        })
    }

    fn dims(&self) -> Nchw {
        let [c, h, w] = self.input;
        (self.n, c, h, w)
    }
    fn out_len(&self) -> usize {
        self.n * self.output.iter().product::<usize>()
    }
}

/// The context every node is lowered in. Which variants a node runs is its
/// [`NodeChoice`](super::choice::NodeChoice), made before and handed over in its [`Binds`].
pub struct Lowering<'a> {
    pub gpu: &'a Gpu,
    pub model: &'a Model,
    /// Tensors are stored in `numerics.storage`.
    pub numerics: Numerics,
    /// The largest storage binding a kernel may use (FC weights are split over bindings).
    pub max_binding: u64,
}

fn bound(gpu: &Gpu, k: Kernel, buffers: &[&Buffer]) -> Result<Bound> {
    let bg = k.bind(gpu, buffers)?;
    Ok(Bound::Kernel(k, bg))
}

fn wrong_binds(at: &At) -> Error {
    Error::Shape(format!("{:?} was given buffers of another op", at.op))
}

/// Handles to a conv's packed weight and bias (a wgpu buffer is reference counted).
fn conv_params(weight: &Buffer, bias: &Buffer) -> ConvParams {
    ConvParams {
        weight: weight.clone(),
        bias: bias.clone(),
    }
}

fn not_linear(at: &At) -> Error {
    Error::Shape(format!("{:?} is not an FC node", at.op))
}

impl Lowering<'_> {
    /// The kernels that prepare a conv node's weights from its canonical f32 `weight`
    /// [c_out, c_in, k, k]: packed for its forward configuration into `packed` and, where
    /// its input gradient runs (`dx`: that conv's configuration, a scratch for the flipped
    /// weight, its packed weight), flipped and packed for that conv. The same packing as
    /// inference's upload (`ConvTune::upload`); the bias is the canonical one, zero padded
    /// to whole blocks.
    pub fn prepare(
        &self,
        at: &At,
        (tune, packed): (ConvTune, &Buffer),
        weight: &Buffer,
        dx: Option<(ConvTune, &Buffer, &Buffer)>,
    ) -> Result<Vec<Bound>> {
        let gpu = self.gpu;
        let s = at.conv_shape().ok_or_else(|| wrong_binds(at))?;
        let (c_in, c_out, k) = (s.c_in, s.c_out, s.k);
        let storage = self.numerics.storage;
        let op = kernels::conv::pack(gpu, c_in, c_out, k, tune, storage)?;
        let mut ks = vec![bound(gpu, op, &[weight, packed])?];
        if let Some((tune, flipped, packed)) = dx {
            // c_in and c_out swap: the gradient's conv maps c_out to c_in.
            let op = kernels::conv::flip(gpu, c_in, c_out, k)?;
            ks.push(bound(gpu, op, &[weight, flipped])?);
            let op = kernels::conv::pack(gpu, c_out, c_in, k, tune, storage)?;
            ks.push(bound(gpu, op, &[flipped, packed])?);
        }
        Ok(ks)
    }

    /// The forward kernels of one node, reading `x` and writing `y`.
    pub fn forward(
        &self,
        at: &At,
        x: &Buffer,
        y: &Buffer,
        b: &Binds<&Buffer>,
    ) -> Result<Vec<Bound>> {
        let (gpu, precision) = (self.gpu, self.numerics.storage);
        let dims = at.dims();
        let (n, c, h, w) = dims;
        let one = |k: Bound| Ok(vec![k]);
        match (at.op, b) {
            (NodeOp::Conv { k, relu, .. }, Binds::Conv { tune, weight, bias }) => {
                let shape = at.conv(k);
                let conv = Conv2d::with_precision(gpu, shape, relu, *tune, precision)?;
                let params = conv_params(weight, bias);
                let bg = conv.bind(gpu, x, &params, y)?;
                one(Bound::Conv(conv, bg))
            }
            (
                NodeOp::Linear { relu, .. },
                Binds::Linear {
                    chunks,
                    bias,
                    variant,
                },
            ) => {
                let shape = at.linear_shape().ok_or_else(|| not_linear(at))?;
                let max = self.max_binding;
                let lin = Linear::with_variant(gpu, shape, relu, max, precision, *variant)?;
                // Handles to the same buffers (a wgpu buffer is reference counted).
                let params = LinearParams {
                    chunks: chunks.iter().map(|c| (*c).clone()).collect(),
                    bias: (*bias).clone(),
                };
                let bgs = lin.bind(gpu, x, &params, y)?;
                one(Bound::Linear(lin, bgs))
            }
            (NodeOp::Relu, Binds::Relu { scale, shift }) => {
                let k = kernels::batchnorm::affine(gpu, (n, c, h * w, 1), true, precision)?;
                one(bound(gpu, k, &[x, scale, shift, y])?)
            }
            (NodeOp::BatchNorm { relu, .. }, bn) => {
                let Binds::BatchNorm {
                    gamma,
                    beta,
                    stats,
                    running_mean,
                    running_var,
                    momentum,
                } = bn
                else {
                    return Err(wrong_binds(at));
                };
                let st = kernels::batchnorm::stats(gpu, n, c, h * w, BN_EPS, *momentum)?;
                let apply = kernels::batchnorm::apply(gpu, n, c, h * w, relu)?;
                Ok(vec![
                    bound(gpu, st, &[x, stats, running_mean, running_var])?,
                    bound(gpu, apply, &[x, gamma, beta, stats, y])?,
                ])
            }
            (NodeOp::MaxPool, Binds::Plain) => {
                let k = kernels::pool::forward(gpu, dims, false, precision)?;
                one(bound(gpu, k, &[x, y])?)
            }
            (NodeOp::MaxPool, Binds::MaxPool { argmax }) => {
                let k = kernels::pool::forward(gpu, dims, true, precision)?;
                one(bound(gpu, k, &[x, y, argmax])?)
            }
            (NodeOp::Dropout { p, .. }, Binds::Dropout { seed }) => {
                let k = kernels::elementwise::dropout(gpu, at.out_len(), p as f64)?;
                one(bound(gpu, k, &[x, seed, y])?)
            }
            (NodeOp::Lrn { layer }, Binds::Plain) => {
                let Op::Lrn(p) = self.model.layers()[layer].op else {
                    return Err(Error::Shape(format!("layer {layer} is not LRN")));
                };
                one(bound(
                    gpu,
                    kernels::lrn::forward(gpu, dims, p, precision)?,
                    &[x, y],
                )?)
            }
            (NodeOp::AvgPool { h: oh, w: ow }, Binds::Plain) => {
                let k = kernels::avgpool::forward(gpu, dims, (oh, ow), precision)?;
                one(bound(gpu, k, &[x, y])?)
            }
            (NodeOp::Im2col { kh, kw }, Binds::Plain) => {
                let k = kernels::im2col::forward(gpu, dims, (kh, kw), precision)?;
                one(bound(gpu, k, &[x, y])?)
            }
            (NodeOp::Softmax, Binds::Plain) => {
                let k = kernels::softmax::forward(gpu, n, c * h * w, precision)?;
                one(bound(gpu, k, &[x, y])?)
            }
            _ => Err(wrong_binds(at)),
        }
    }

    /// The backward kernels of one node: from `g.cur` (the gradient of its output) to its
    /// parameters' gradients and its input's, as `flow` asks, the latter left in `g.cur`.
    /// `x` and `y` are the node's saved input and output.
    pub fn backward(
        &self,
        at: &At,
        (x, y): (&Buffer, &Buffer),
        g: &mut PingPong,
        b: &Binds<&Buffer>,
        grads: &Grads<&Buffer>,
        flow: Flow,
    ) -> Result<Vec<Bound>> {
        let (needs_dx, accumulate) = (flow.dx, flow.accumulate);
        let gpu = self.gpu;
        let dims = at.dims();
        let (n, c, h, w) = dims;
        let mut ks = Vec::new();
        // A fused ReLU first: its mask is where the node's output is positive.
        if let NodeOp::Conv { relu: true, .. }
        | NodeOp::BatchNorm { relu: true, .. }
        | NodeOp::Linear { relu: true, .. } = at.op
        {
            let k = kernels::elementwise::relu_backward(gpu, at.out_len())?;
            ks.push(bound(gpu, k, &[y, g.cur, g.other])?);
            g.swap();
        }
        match (at.op, b, grads) {
            (
                NodeOp::Conv { layer, k, .. },
                Binds::Conv { tune: forward, .. },
                Grads::Conv {
                    dw,
                    db,
                    flipped,
                    partials,
                    ..
                },
            ) => {
                let shape = at.conv(k);
                if flow.params {
                    self.conv_params_backward(
                        shape,
                        forward.variant,
                        (x, &*g),
                        (dw, db, partials),
                        flow,
                        &mut ks,
                    )?;
                }
                if needs_dx {
                    // The input gradient as a forward conv of dy with the flipped weight,
                    // on the fast kernels; the first node, the only one without it, needs
                    // no dx.
                    let Some((tune, weight, bias)) = flipped else {
                        return Err(Error::Shape(format!(
                            "conv layer {layer}'s input gradient has no flipped weight"
                        )));
                    };
                    let params = conv_params(weight, bias);
                    let d =
                        ConvShape::new(shape.n, shape.c_out, shape.c_in, shape.h, shape.w, shape.k);
                    let conv = Conv2d::with_precision(gpu, d, false, *tune, self.numerics.storage)?;
                    let bg = conv.bind(gpu, g.cur, &params, g.other)?;
                    ks.push(Bound::Conv(conv, bg));
                    g.swap();
                }
            }
            (
                NodeOp::BatchNorm { .. },
                Binds::BatchNorm { gamma, stats, .. },
                Grads::BatchNorm {
                    dgamma,
                    dbeta,
                    sums,
                },
            ) => {
                let k = kernels::batchnorm::backward_reduce(gpu, n, c, h * w, accumulate)?;
                ks.push(bound(gpu, k, &[x, g.cur, stats, sums, dgamma, dbeta])?);
                let k = kernels::batchnorm::backward_apply(gpu, n, c, h * w)?;
                ks.push(bound(gpu, k, &[x, g.cur, gamma, stats, sums, g.other])?);
                g.swap();
            }
            (NodeOp::Linear { .. }, _, Grads::Linear { chunks, db }) => {
                let shape = at.linear_shape().ok_or_else(|| not_linear(at))?;
                self.linear_backward(shape, n, (x, g), (chunks, db), flow, &mut ks)?;
            }
            (NodeOp::Relu, _, Grads::None) => {
                let k = kernels::elementwise::relu_backward(gpu, at.out_len())?;
                ks.push(bound(gpu, k, &[y, g.cur, g.other])?);
                g.swap();
            }
            (NodeOp::Lrn { layer }, _, Grads::None) => {
                let Op::Lrn(p) = self.model.layers()[layer].op else {
                    return Err(Error::Shape(format!("layer {layer} is not LRN")));
                };
                let k = kernels::lrn::backward(gpu, dims, p)?;
                ks.push(bound(gpu, k, &[x, g.cur, g.other])?);
                g.swap();
            }
            (NodeOp::AvgPool { h: oh, w: ow }, _, Grads::None) => {
                let k = kernels::avgpool::backward(gpu, dims, (oh, ow))?;
                ks.push(bound(gpu, k, &[g.cur, g.other])?);
                g.swap();
            }
            (NodeOp::MaxPool, Binds::MaxPool { argmax }, Grads::None) => {
                let k = kernels::pool::backward(gpu, dims)?;
                ks.push(bound(gpu, k, &[g.cur, argmax, g.other])?);
                g.swap();
            }
            (NodeOp::Dropout { p, .. }, Binds::Dropout { seed }, Grads::None) => {
                let k = kernels::elementwise::dropout(gpu, at.out_len(), p as f64)?;
                ks.push(bound(gpu, k, &[g.cur, seed, g.other])?);
                g.swap();
            }
            _ => {
                return Err(Error::Shape(format!(
                    "{:?} has no backward pass with these buffers",
                    at.op
                )))
            }
        }
        Ok(ks)
    }

    /// A conv's weight gradient (on tensor cores where the forward runs there, f16
    /// training; through `partials` where it splits the pixels) and bias gradient.
    fn conv_params_backward(
        &self,
        shape: ConvShape,
        forward: ConvVariant,
        (x, g): (&Buffer, &PingPong),
        (dw, db, partials): (&Buffer, &Buffer, &Buffer),
        flow: Flow,
        ks: &mut Vec<Bound>,
    ) -> Result<()> {
        let gpu = self.gpu;
        let k = kernels::conv::backward_weight::wgrad_for(
            gpu,
            shape,
            flow.accumulate,
            forward,
            flow.batch,
        )?;
        match k.reduce {
            Some(r) => {
                ks.push(bound(gpu, k.main, &[x, g.cur, partials])?);
                ks.push(bound(gpu, r, &[partials, dw])?);
            }
            None => ks.push(bound(gpu, k.main, &[x, g.cur, dw])?),
        }
        let hw = shape.h * shape.w;
        let k = kernels::elementwise::channel_sum(gpu, shape.n, shape.c_out, hw, flow.accumulate)?;
        ks.push(bound(gpu, k, &[g.cur, db])?);
        Ok(())
    }

    /// An FC layer's gradients, chunk by chunk of its weight rows (one binding each): dw
    /// per chunk, dx as every chunk's share added, and the bias gradient.
    fn linear_backward(
        &self,
        shape: LinearShape,
        images: usize,
        (x, g): (&Buffer, &mut PingPong),
        (chunks, db): (&[(usize, usize, &Buffer, &Buffer)], &Buffer),
        flow: Flow,
        ks: &mut Vec<Bound>,
    ) -> Result<()> {
        let gpu = self.gpu;
        for (j, &(row0, rows, weight, dw)) in chunks.iter().enumerate() {
            if flow.params {
                let k = kernels::linear::dw(gpu, shape, row0, rows, flow.accumulate)?;
                ks.push(bound(gpu, k, &[x, g.cur, dw])?);
            }
            if flow.dx {
                let k = kernels::linear::dx(gpu, shape, row0, rows, j > 0)?;
                ks.push(bound(gpu, k, &[weight, g.cur, g.other])?);
            }
        }
        if flow.params {
            let k =
                kernels::elementwise::channel_sum(gpu, images, shape.n_out, 1, flow.accumulate)?;
            ks.push(bound(gpu, k, &[g.cur, db])?);
        }
        if flow.dx {
            g.swap();
        }
        Ok(())
    }
}
