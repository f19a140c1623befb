//! Shader modules and compute pipelines, compiled once per (shader, entry, overrides).

use super::Gpu;
use crate::error::Result;

/// A WGSL source compiled into the binary. Tunables are `override` constants given at
/// pipeline creation, so one source serves every tile size and shape.
#[derive(Clone, Copy, Debug)]
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
}

impl Gpu {
    /// The compute pipeline for `entry` of `shader` with the given override constants,
    /// built on first use and cached. Layouts are derived from the shader, so the bind
    /// group layout of group 0 is `pipeline.get_bind_group_layout(0)`.
    pub fn pipeline(
        &self,
        shader: &Shader,
        entry: &'static str,
        constants: &[(&str, f64)],
    ) -> Result<wgpu::ComputePipeline> {
        let mut consts: Vec<(String, u64)> = constants
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_bits()))
            .collect();
        consts.sort();
        let key = (shader.name, entry, consts);
        if let Some(p) = self
            .pipelines
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(p);
        }
        let module = self.module(shader)?;
        let pipeline = self.scoped(&format!("pipeline {}::{entry}", shader.name), || {
            self.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(shader.name),
                    layout: None,
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants,
                        // Kernels that use workgroup memory write it before reading it.
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                })
        })?;
        if let Ok(mut m) = self.pipelines.lock() {
            m.insert(key, pipeline.clone());
        }
        Ok(pipeline)
    }

    fn module(&self, shader: &Shader) -> Result<wgpu::ShaderModule> {
        if let Some(m) = self
            .modules
            .lock()
            .ok()
            .and_then(|m| m.get(shader.name).cloned())
        {
            return Ok(m);
        }
        let module = self.scoped(&format!("shader {}", shader.name), || {
            let desc = wgpu::ShaderModuleDescriptor {
                label: Some(shader.name),
                source: wgpu::ShaderSource::Wgsl(shader.source.into()),
            };
            if self.bounds_checks() {
                self.device.create_shader_module(desc)
            } else {
                // SAFETY: every kernel's bind() checks each buffer against the shape the
                // pipeline was built for, and the shaders index only within those shapes,
                // so no access leaves its binding. Loops have constant trip counts after
                // override substitution, so none can run unbounded.
                unsafe {
                    self.device
                        .create_shader_module_trusted(desc, wgpu::ShaderRuntimeChecks::unchecked())
                }
            }
        })?;
        if let Ok(mut m) = self.modules.lock() {
            m.insert(shader.name, module.clone());
        }
        Ok(module)
    }
}
