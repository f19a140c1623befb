//! vgg-wgpu: a GPU compute engine for the VGG family of convolutional networks, with
//! hand-written WGSL kernels on wgpu and an independent CPU reference for every op.
//!
//! Layers: [`gpu`] (wgpu plumbing), [`kernels`] (one module per op), [`reference`] (the CPU
//! reference) and [`check`] (GPU-versus-reference comparison used by the tests, `vgg check`
//! and the benchmarks).

pub mod bench;
pub mod check;
pub mod error;
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
