//! GPU-side timing of a compute pass with timestamp queries, where the adapter has them.

use super::Gpu;
use crate::error::Result;

/// Two timestamps around one compute pass. Without TIMESTAMP_QUERY, `new` returns None and
/// callers fall back to wall-clock time around a full device sync.
pub struct GpuTimer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    period_ns: f64,
}

impl GpuTimer {
    pub fn new(gpu: &Gpu) -> Option<GpuTimer> {
        if !gpu.has_timestamps() {
            return None;
        }
        let queries = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("timer"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let resolve = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timer resolve"),
            size: 16,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        Some(GpuTimer {
            queries,
            resolve,
            period_ns: gpu.queue.get_timestamp_period() as f64,
        })
    }

    /// The timestamp writes to put on the pass being timed.
    pub fn writes(&self) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.queries,
            beginning_of_pass_write_index: Some(0),
            end_of_pass_write_index: Some(1),
        }
    }

    /// Encode after the timed pass ends.
    pub fn resolve(&self, enc: &mut wgpu::CommandEncoder) {
        enc.resolve_query_set(&self.queries, 0..2, &self.resolve, 0);
    }

    /// Seconds between the two timestamps of the last submitted, completed pass.
    pub fn seconds(&self, gpu: &Gpu) -> Result<f64> {
        crate::gpu::blocking(self.seconds_async(gpu))
    }

    /// [`GpuTimer::seconds`] as a future: what a page awaits.
    pub async fn seconds_async(&self, gpu: &Gpu) -> Result<f64> {
        let ticks: Vec<u64> = gpu.read_async(&self.resolve, 2).await?;
        Ok(ticks[1].wrapping_sub(ticks[0]) as f64 * self.period_ns * 1e-9)
    }
}
