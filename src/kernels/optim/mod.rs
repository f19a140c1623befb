//! The optimiser.

mod sgd;

pub use sgd::sgd;
