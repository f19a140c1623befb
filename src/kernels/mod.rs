//! One module per op, named as its shader folder (`shaders/<op>/`) and its reference
//! (`reference/<op>.rs`): shape checks, dispatch-size math, bind groups, and encoding into a
//! compute pass. The only Rust that knows a shader's bindings. In each op's folder, mod.rs
//! holds the shape type and the forward kernel (`forward.wgsl`, or one per variant) and
//! each other pass has a file with its shader's stem.

/// A kernel's override constants by name, `consts![N = n, RELU = relu]`: the
/// `(name, f64)` pairs wgpu takes, each value converted by `Const` (so a bool is 0 or 1 and
/// no call site spells out the casts). Defined before the op modules, so it is in scope in
/// all of them.
macro_rules! consts {
    ($($name:ident = $value:expr),* $(,)?) => {
        [$((stringify!($name), $crate::kernels::Const::value($value))),*]
    };
}

pub mod avgpool;
pub mod batchnorm;
pub mod conv;
pub mod elementwise;
pub mod im2col;
mod kernel;
pub mod linear;
pub mod lrn;
pub mod optim;
pub mod peak;
pub mod pool;
pub mod softmax;

pub use kernel::Kernel;

/// A batch tensor's shape, (n, c, h, w): what the ops other than conv and FC take.
pub type Nchw = (usize, usize, usize, usize);
pub(crate) use kernel::{nchw_consts, per_elem, WG};

use crate::error::{shape_err, Result};
use crate::gpu::Gpu;

macro_rules! shader {
    ($name:literal) => {
        $crate::gpu::Shader {
            name: $name,
            precision: $crate::gpu::Precision::F32,
            source: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/shaders/",
                $name,
                ".wgsl"
            )),
        }
    };
}
pub(crate) use shader;

/// A value a shader's `override` takes: wgpu passes every one as an f64.
pub(crate) trait Const {
    fn value(self) -> f64;
}

macro_rules! numeric_const {
    ($($t:ty),*) => {
        $(impl Const for $t {
            fn value(self) -> f64 {
                self as f64
            }
        })*
    };
}
numeric_const!(usize, u32, u64, f32, f64);

impl Const for bool {
    fn value(self) -> f64 {
        f64::from(u8::from(self))
    }
}

/// Folds `total` workgroups into (x, z) so neither passes the adapter's per-dimension limit
/// (65535 on most). Shaders rebuild the linear id as `wid.x + wid.z * nwg.x` and skip ids
/// past the end.
pub(crate) fn fold(gpu: &Gpu, total: u64) -> Result<(u32, u32)> {
    let max = gpu.limits().max_compute_workgroups_per_dimension as u64;
    if total == 0 {
        return Ok((0, 1));
    }
    let x = total.min(max);
    let z = total.div_ceil(x);
    if z > max {
        return Err(shape_err!(
            "{total} workgroups exceed the adapter's dispatch limit"
        ));
    }
    Ok((x as u32, z as u32))
}

/// Checks that a buffer holds at least `elems` f32 and fits one storage binding.
pub(crate) fn check_buffer(
    gpu: &Gpu,
    what: &str,
    buf: &wgpu::Buffer,
    elems: usize,
    elem_bytes: usize,
) -> Result<()> {
    let need = (elems * elem_bytes) as u64;
    if buf.size() < need {
        return Err(shape_err!(
            "{what} buffer holds {} bytes, the op needs {need}",
            buf.size()
        ));
    }
    if need > gpu.max_binding_bytes() {
        return Err(crate::error::Error::Limit(format!(
            "{what} needs {need} bytes in one binding, the adapter allows {}; split it",
            gpu.max_binding_bytes()
        )));
    }
    Ok(())
}

/// A bind group over buffers from their start, in binding order. A buffer larger than one
/// binding (an executor slot shared by tensors of different sizes) is bound over its first
/// `max_binding_bytes`: every op checks with `check_buffer` that its tensor fits there.
pub(crate) fn bind(
    gpu: &Gpu,
    pipeline: &wgpu::ComputePipeline,
    label: &str,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let max = gpu.max_binding_bytes() / 4 * 4;
    bind_ranges(
        gpu,
        pipeline,
        label,
        &buffers
            .iter()
            .map(|b| (*b, 0, (b.size() > max).then_some(max)))
            .collect::<Vec<_>>(),
    )
}

/// A bind group over (buffer, byte offset, byte size) windows, in binding order.
pub(crate) fn bind_ranges(
    gpu: &Gpu,
    pipeline: &wgpu::ComputePipeline,
    label: &str,
    windows: &[(&wgpu::Buffer, u64, Option<u64>)],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = windows
        .iter()
        .enumerate()
        .map(|(i, (b, offset, size))| wgpu::BindGroupEntry {
            binding: i as u32,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: b,
                offset: *offset,
                size: size.and_then(wgpu::BufferSize::new),
            }),
        })
        .collect();
    gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: &pipeline.get_bind_group_layout(0),
        entries: &entries,
    })
}

/// Sets pipeline and bind group and dispatches (x, 1 or y, z).
pub(crate) fn dispatch(
    pass: &mut wgpu::ComputePass<'_>,
    pipeline: &wgpu::ComputePipeline,
    bg: &wgpu::BindGroup,
    (x, y, z): (u32, u32, u32),
) {
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, bg, &[]);
    if x > 0 && y > 0 && z > 0 {
        pass.dispatch_workgroups(x, y, z);
    }
}

/// A compiled kernel with its bind groups, ready to encode: what the executor and the
/// trainer record into their passes.
pub enum Bound {
    Conv(conv::Conv2d, wgpu::BindGroup),
    Linear(linear::Linear, Vec<wgpu::BindGroup>),
    Kernel(Kernel, wgpu::BindGroup),
}

impl Bound {
    pub fn encode(&self, gpu: &Gpu, pass: &mut wgpu::ComputePass<'_>) -> Result<()> {
        match self {
            Bound::Conv(k, bg) => k.encode(gpu, pass, bg),
            Bound::Linear(k, bgs) => k.encode(gpu, pass, bgs),
            Bound::Kernel(k, bg) => k.encode(gpu, pass, bg),
        }
    }
}
