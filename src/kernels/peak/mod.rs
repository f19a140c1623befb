//! Two measuring kernels: an FMA-throughput kernel and a copy kernel, whose rates are the
//! adapter's practical arithmetic and memory peaks that the benchmark relates every kernel
//! to.

mod copy;
mod fma;

pub use copy::{copy, copy_bytes};
pub use fma::{fma, fma_flops};
