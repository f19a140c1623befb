//! Shader modules and compute pipelines, compiled once per (shader, entry, overrides).

use super::Gpu;
use crate::error::Result;

/// Every file under shaders/ as (name, source), the name being its path without `.wgsl`:
/// what `#include` lines resolve against.
const SHADERS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/shaders.rs"));

/// A WGSL source compiled into the binary. Tunables are `override` constants given at
/// pipeline creation, so one source serves every tile size and shape.
#[derive(Clone, Copy, Debug)]
pub struct Shader {
    pub name: &'static str,
    pub source: &'static str,
    pub precision: Precision,
}

/// The element type of tensors in GPU memory. Kernels compute in f32 either way; f16
/// halves the memory and bandwidth where the adapter has SHADER_F16.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    #[default]
    F32,
    F16,
}

impl Precision {
    /// Bytes per element.
    pub fn bytes(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::F16 => 2,
        }
    }

    /// Declares the storage type `S` the shaders are written in. (A type alias is the one
    /// thing an override constant cannot choose.)
    fn prelude(self) -> &'static str {
        match self {
            Precision::F32 => "alias S = f32;\n",
            Precision::F16 => "enable f16;\nalias S = f16;\n",
        }
    }

    /// Encodes f32 values in this precision's bytes (f16 rounds to nearest).
    pub fn encode(self, data: &[f32]) -> Vec<u8> {
        match self {
            Precision::F32 => bytemuck::cast_slice(data).to_vec(),
            Precision::F16 => data
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect(),
        }
    }

    /// Decodes this precision's bytes to f32.
    pub fn decode(self, bytes: &[u8]) -> Vec<f32> {
        match self {
            Precision::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Precision::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        }
    }
}

impl Shader {
    /// The same source with tensors stored as `precision`.
    pub fn with_precision(self, precision: Precision) -> Shader {
        Shader { precision, ..self }
    }
}

type SourceOf<'a> = dyn Fn(&str, &'static str) -> Result<std::borrow::Cow<'static, str>> + 'a;

/// The whole WGSL module of `shader`: its precision's prelude and its source with the
/// `#include`s expanded (`source_of` gives each file's text), the `enable` directives of
/// every part moved to the top once each, as WGSL wants them before any declaration.
fn assemble(shader: &Shader, source_of: &SourceOf<'_>) -> Result<String> {
    let mut seen = vec![shader.name];
    let mut body = String::new();
    expand(
        shader.name,
        source_of(shader.name, shader.source)?,
        &mut seen,
        &mut body,
        source_of,
    )?;
    let mut enables: Vec<&str> = Vec::new();
    let mut rest = String::new();
    for line in shader.precision.prelude().lines().chain(body.lines()) {
        if line.trim_start().starts_with("enable ") {
            if !enables.contains(&line.trim()) {
                enables.push(line.trim());
            }
        } else {
            rest.push_str(line);
            rest.push('\n');
        }
    }
    Ok(enables.iter().map(|e| format!("{e}\n")).collect::<String>() + &rest)
}

fn expand(
    name: &str,
    text: std::borrow::Cow<'static, str>,
    seen: &mut Vec<&'static str>,
    out: &mut String,
    source_of: &SourceOf<'_>,
) -> Result<()> {
    for line in text.lines() {
        let Some(inc) = line.trim().strip_prefix("#include ") else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let inc = inc.trim().trim_matches('"');
        let Some(&(inc, source)) = SHADERS.iter().find(|(n, _)| *n == inc) else {
            return Err(crate::error::Error::Shape(format!(
                "shader {name} includes \"{inc}\", which is not under shaders/"
            )));
        };
        if !seen.contains(&inc) {
            seen.push(inc);
            expand(inc, source_of(inc, source)?, seen, out, source_of)?;
        }
    }
    Ok(())
}

/// The WGSL module `shader` compiles from with the built-in sources (no shader folder):
/// what the shader-validation tests parse.
pub fn builtin_wgsl(shader: &Shader) -> Result<String> {
    assemble(shader, &|_, builtin| Ok(builtin.into()))
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
        let key = (shader.name, shader.precision, entry, consts);
        if let Some(p) = self
            .pipelines
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(p);
        }
        let max = self.limits().max_compute_invocations_per_workgroup;
        if let Some((_, wg)) = constants
            .iter()
            .find(|(k, v)| *k == "WG" && *v > max as f64)
        {
            // Selectors size workgroups within the limit; this names a kernel that did not.
            return Err(crate::error::Error::Limit(format!(
                "{}::{entry} was asked for {wg} invocations per workgroup; {} allows {max}",
                shader.name,
                self.info().name
            )));
        }
        let module = self.module(shader)?;
        let what = format!("{}::{entry}", shader.name);
        let pipeline = self.scoped(&format!("pipeline {what}"), || {
            self.activity.during(super::Stage::Pipeline, &what, || {
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
            })
        })?;
        if let Ok(mut m) = self.pipelines.lock() {
            m.insert(key, pipeline.clone());
        }
        Ok(pipeline)
    }

    /// The kernel's source with its `#include "NAME"` lines replaced by those files (each
    /// once, recursively): the built-in sources, or the shader folder's replacements.
    fn shader_source(&self, shader: &Shader) -> Result<String> {
        assemble(shader, &|name, builtin| self.source_of(name, builtin))
    }

    /// The text of shader file `name`: `builtin`, unless the shader folder replaces it.
    fn source_of(
        &self,
        name: &str,
        builtin: &'static str,
    ) -> Result<std::borrow::Cow<'static, str>> {
        match self.shader_override(name) {
            None => Ok(builtin.into()),
            Some(path) => {
                let text = crate::io::read_text(&path, 16 << 20, "a shader")?;
                if let Ok(mut used) = self.overrides_used.lock() {
                    used.insert(name.to_string());
                }
                Ok(text.into())
            }
        }
    }

    /// The file that replaces the built-in kernel `name`, if the shader folder has one.
    pub fn shader_override(&self, name: &str) -> Option<std::path::PathBuf> {
        let path = self.shader_dir.as_ref()?.join(format!("{name}.wgsl"));
        path.is_file().then_some(path)
    }

    fn module(&self, shader: &Shader) -> Result<wgpu::ShaderModule> {
        let key = (shader.name, shader.precision);
        if let Some(m) = self.modules.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(m);
        }
        if shader.precision == Precision::F16
            && !self.features().contains(wgpu::Features::SHADER_F16)
        {
            return Err(crate::error::Error::Limit(format!(
                "f16 kernels need the shader-f16 feature, which {} lacks",
                self.info().name
            )));
        }
        let source = self.shader_source(shader)?;
        let module = self.scoped(&format!("shader {}", shader.name), || {
            let desc = wgpu::ShaderModuleDescriptor {
                label: Some(shader.name),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            };
            self.activity.set(super::Stage::ShaderCompile, shader.name);
            let module = if self.bounds_checks() {
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
            };
            self.activity.set(super::Stage::Host, "");
            module
        })?;
        if let Ok(mut m) = self.modules.lock() {
            m.insert(key, module.clone());
        }
        Ok(module)
    }
}
