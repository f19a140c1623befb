//! vgg-wgpu: a GPU compute engine for the VGG family of convolutional networks, with
//! hand-written WGSL kernels on wgpu and an independent CPU reference for every op.
//!
//! Modules, each using only those above it (the `layering` test holds it):
//! - [`error`]: the one error type;
//! - [`model`]: architectures (the paper's configs A-E and custom ones), weights, the card a
//!   file records about itself;
//! - [`io`]: files (safetensors, PyTorch .pth, ONNX, images, datasets) and the paper's scale
//!   protocol on stored images;
//! - [`gpu`]: wgpu plumbing (device, buffers, pipelines, timing, tuning);
//! - [`kernels`]: one module per op, each binding its WGSL shaders;
//! - [`reference`](mod@reference): the CPU reference of every op, an independent oracle;
//! - [`graph`]: lowering a model to kernel nodes and the executor ([`Network`]);
//! - [`train`], [`infer`], [`eval`]: training, classification, the paper's evaluation;
//! - [`check`], [`bench`](mod@bench): GPU-versus-reference conformance and the benchmark suite.

pub mod bench;
pub mod check;
pub mod error;
pub mod eval;
pub mod gpu;
pub mod graph;
pub mod infer;
pub mod io;
pub mod kernels;
pub mod model;
pub mod reference;
pub mod train;

pub use error::{Error, Result};
pub use gpu::{Gpu, GpuOptions};
pub use graph::{Network, NetworkOptions};
pub use model::{Init, Model, Tensor, Weights};

/// The README's code blocks, compiled and run as doctests so the documented API stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

#[cfg(test)]
mod layering;
