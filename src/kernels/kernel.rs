//! The common shape of every kernel but conv and FC (which pack weights and split bindings):
//! `new` compiles for a shape with the element count each binding must hold, `bind` checks
//! every buffer against it, `encode` dispatches. Each op's file builds its kernels on this.

use super::{bind, check_buffer, dispatch, fold};
use crate::error::{shape_err, Result};
use crate::gpu::{Gpu, Shader};

/// Invocations per workgroup of the elementwise kernels.
pub(crate) const WG: u32 = 64;

/// A compiled kernel with the element counts its bindings must hold, in binding order.
pub struct Kernel {
    /// The shader, and the entry point where it is not `main`: what errors name.
    pub name: String,
    pipeline: wgpu::ComputePipeline,
    /// Workgroups to dispatch (folded over x and z).
    groups: u64,
    /// (binding name, elements it must hold, bytes per element).
    bindings: Vec<(&'static str, usize, usize)>,
}

impl Kernel {
    /// A kernel whose bindings all hold 4-byte elements (f32 or u32).
    pub(crate) fn new(
        gpu: &Gpu,
        shader: Shader,
        entry: &'static str,
        consts: &[(&str, f64)],
        groups: u64,
        bindings: Vec<(&'static str, usize)>,
    ) -> Result<Kernel> {
        let bindings = bindings.into_iter().map(|(n, e)| (n, e, 4)).collect();
        Kernel::with_bindings(gpu, shader, entry, consts, groups, bindings)
    }

    /// A kernel whose bindings hold (name, elements, bytes per element): tensors stored as
    /// f16 take 2, indices 4.
    pub(crate) fn with_bindings(
        gpu: &Gpu,
        shader: Shader,
        entry: &'static str,
        consts: &[(&str, f64)],
        groups: u64,
        bindings: Vec<(&'static str, usize, usize)>,
    ) -> Result<Kernel> {
        let name = match entry {
            "main" => shader.name.to_string(),
            _ => format!("{}::{entry}", shader.name),
        };
        if groups == 0 || bindings.iter().any(|b| b.1 == 0) {
            return Err(shape_err!("{name}: empty shape"));
        }
        Ok(Kernel {
            name,
            pipeline: gpu.pipeline(&shader, entry, consts)?,
            groups,
            bindings,
        })
    }

    /// A bind group over `buffers` (in binding order), each checked against its size.
    pub fn bind(&self, gpu: &Gpu, buffers: &[&wgpu::Buffer]) -> Result<wgpu::BindGroup> {
        if buffers.len() != self.bindings.len() {
            return Err(shape_err!(
                "{} takes {} buffers, got {}",
                self.name,
                self.bindings.len(),
                buffers.len()
            ));
        }
        for ((what, elems, bytes), b) in self.bindings.iter().zip(buffers) {
            check_buffer(gpu, &format!("{} {what}", self.name), b, *elems, *bytes)?;
        }
        Ok(bind(gpu, &self.pipeline, &self.name, buffers))
    }

    pub fn encode(
        &self,
        gpu: &Gpu,
        pass: &mut wgpu::ComputePass<'_>,
        bg: &wgpu::BindGroup,
    ) -> Result<()> {
        let (x, z) = fold(gpu, self.groups)?;
        dispatch(pass, &self.pipeline, bg, (x, 1, z));
        Ok(())
    }
}

pub(crate) fn per_elem(n: usize) -> u64 {
    (n as u64).div_ceil(WG as u64)
}

/// The (N, C, HW) override constants of the training-mode kernels.
pub(crate) fn nchw_consts(n: usize, c: usize, hw: usize) -> Vec<(&'static str, f64)> {
    consts![N = n, C = c, HW = hw].to_vec()
}
