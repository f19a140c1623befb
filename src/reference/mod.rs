//! CPU reference of every op, one module per op named as in `kernels/`: plain, obviously-correct loops over NCHW f32 tensors, with
//! f64 accumulation. Shares no code with `kernels/`: its independence is what makes a
//! comparison with the GPU mean something.

/// The element types the reference runs in: f32 (against the GPU) and f64 (for the
/// finite-difference checks of the backward ops).
pub trait Real: Copy + Send + Sync + Into<f64> + std::fmt::Debug + 'static {
    fn of(v: f64) -> Self;
}

impl Real for f32 {
    fn of(v: f64) -> f32 {
        v as f32
    }
}

impl Real for f64 {
    fn of(v: f64) -> f64 {
        v
    }
}

/// A value as f64, where every accumulation happens.
fn f<T: Real>(v: T) -> f64 {
    v.into()
}

/// ReLU that keeps NaN, as the kernels' (`shaders/kernel/relu.wgsl`): an overflow upstream
/// must reach the logits, where `vgg infer` reports it. `f64::max` would return 0.0 for a
/// NaN, so the reference would agree with a kernel that hides it.
pub fn relu(v: f64) -> f64 {
    if v <= 0.0 {
        0.0
    } else {
        v
    }
}

pub mod avgpool;
pub mod batchnorm;
pub mod conv;
pub mod elementwise;
pub mod im2col;
pub mod linear;
pub mod lrn;
pub mod network;
pub mod optim;
pub mod peak;
pub mod pool;
pub mod softmax;
pub mod train;

#[cfg(test)]
mod grad_check;
