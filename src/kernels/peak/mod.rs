//! Two measuring kernels: an FMA-throughput kernel and a copy kernel, whose rates are the
//! adapter's practical arithmetic and memory peaks that the benchmark relates every kernel
//! to.

mod copy;
mod fma;

pub use copy::PeakCopy;
pub use fma::PeakFma;
