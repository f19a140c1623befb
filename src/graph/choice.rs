//! What each node runs, decided in one place: [`Choose::node`] gives a node's
//! [`NodeChoice`] (its conv configurations forward and for the input gradient, its FC
//! variant) from the adapter, the node's shape, the tuning file (which
//! `kernels::conv::select` and `kernels::linear::select` read) and the [`Numerics`]. The
//! executor, the trainer and `vgg summary` take a node's variants from its choice; the
//! lowering runs what it is given. The weight gradient and its partial sums follow the
//! forward variant ([`ConvChoice::wgrad_partials`]).

use super::lower::At;
use super::NodeOp;
use crate::gpu::{Gpu, Precision};
use crate::kernels::conv::{self, ConvShape, ConvTune};
use crate::kernels::linear::{self, LinearShape, LinearVariant};

/// A run's two precisions, which "precision" used to mean by turns: how tensors are stored
/// (activations, and the weights the executor uploads) and what a conv or FC layer's
/// multiplies take (f16 selects the tensor-core variants where the adapter has them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Numerics {
    pub storage: Precision,
    pub operands: Precision,
}

impl Numerics {
    /// Inference at `p` (`vgg infer --precision`): tensors stored in `p` and multiplied in
    /// it.
    pub fn inference(p: Precision) -> Self {
        Numerics {
            storage: p,
            operands: p,
        }
    }

    /// Training at `p` (`vgg train --precision`): activations, gradients and master
    /// weights stay f32; `p` is the multiplies' operands, as PyTorch's AMP.
    pub fn training(p: Precision) -> Self {
        Numerics {
            storage: Precision::F32,
            operands: p,
        }
    }

    /// Whether a training step is loss-scaled: where its products take f16 operands.
    pub fn loss_scaled(&self) -> bool {
        self.operands == Precision::F16
    }
}

/// A conv node's configurations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvChoice {
    pub forward: ConvTune,
    /// The input gradient's conv (dy over the flipped weight, c_out to c_in channels) where
    /// training needs the node's input gradient.
    pub dx: Option<ConvTune>,
}

impl ConvChoice {
    /// Elements of partial sums the weight gradient of `s` needs (`s.n` images of a batch
    /// of `batch`): the tensor-core one after an f16-operand forward, the f32 one after any
    /// other (`backward_weight::wgrad_for`).
    pub fn wgrad_partials(&self, s: ConvShape, batch: usize) -> usize {
        match self.forward.variant.f16_operands() {
            true => conv::backward_weight::coop_partial_len(s),
            false => conv::backward_weight::partial_len(s, batch),
        }
    }
}

/// What a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeChoice {
    Conv(ConvChoice),
    Linear(LinearVariant),
    /// Every other op has one kernel per pass.
    Fixed,
}

impl NodeChoice {
    pub fn conv(&self) -> Option<ConvChoice> {
        match self {
            NodeChoice::Conv(c) => Some(*c),
            _ => None,
        }
    }

    pub fn linear(&self) -> Option<LinearVariant> {
        match self {
            NodeChoice::Linear(v) => Some(*v),
            _ => None,
        }
    }
}

/// What choices are made from: the adapter, the numerics, and a conv configuration or FC
/// variant the caller fixes for every layer (`--conv`, `--linear`, a test's).
#[derive(Clone, Copy)]
pub struct Choose<'a> {
    pub gpu: &'a Gpu,
    pub numerics: Numerics,
    pub conv: Option<ConvTune>,
    pub linear: Option<LinearVariant>,
}

impl Choose<'_> {
    /// The forward configuration of a conv of shape `s`.
    pub fn conv(&self, s: ConvShape) -> ConvTune {
        conv::select(self.gpu, s, self.conv, self.numerics.operands)
    }

    /// The FC variant at shape `s` (its rows `m` are the batch's, or dense evaluation's
    /// windows).
    pub fn linear(&self, s: LinearShape) -> LinearVariant {
        linear::select(self.gpu, s, self.linear, self.numerics.operands)
    }

    /// A node's choice; `dx`: whether its input gradient is computed (training, every node
    /// but the first).
    pub fn node(&self, at: &At, dx: bool) -> NodeChoice {
        match at.op {
            NodeOp::Conv { .. } => {
                let Some(s) = at.conv_shape() else {
                    return NodeChoice::Fixed;
                };
                let flipped = ConvShape::new(s.n, s.c_out, s.c_in, s.h, s.w, s.k);
                NodeChoice::Conv(ConvChoice {
                    forward: self.conv(s),
                    dx: dx.then(|| self.conv(flipped)),
                })
            }
            NodeOp::Linear { .. } => match at.linear_shape() {
                Some(s) => NodeChoice::Linear(self.linear(s)),
                None => NodeChoice::Fixed,
            },
            _ => NodeChoice::Fixed,
        }
    }
}
