//! Storage buffers: upload, allocate, poison and read back.

use super::Gpu;
use crate::error::{Error, Result};

/// Every engine buffer can be bound as storage and copied both ways, so any tensor can be
/// read back or refilled without knowing who made it.
const USAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_SRC)
    .union(wgpu::BufferUsages::COPY_DST);

/// A quiet NaN: the poison that makes an unwritten output element fail any comparison.
pub const POISON_BITS: u32 = 0x7fc0_0000;

impl Gpu {
    fn check_size(&self, label: &str, bytes: u64) -> Result<()> {
        let max = self.limits().max_buffer_size;
        if bytes > max {
            return Err(Error::Limit(format!(
                "buffer '{label}' needs {bytes} bytes, the adapter's max buffer size is {max}"
            )));
        }
        Ok(())
    }

    /// A storage buffer holding `data`.
    pub fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<wgpu::Buffer> {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        self.check_size(label, bytes.len() as u64)?;
        // A zero-sized binding is invalid; keep one element so empty tensors still bind.
        let padded;
        let contents = if bytes.is_empty() {
            padded = [0u8; 4];
            &padded[..]
        } else {
            bytes
        };
        // wgpu's create_buffer_init panics where the mapping fails (a lost device); map by
        // hand so that it is an error naming the buffer.
        let buffer = self.scoped(label, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (contents.len() as u64).div_ceil(4) * 4,
                usage: USAGE,
                mapped_at_creation: true,
            })
        })?;
        {
            let mut view = buffer.get_mapped_range_mut(..).map_err(|e| Error::Gpu {
                op: format!("upload of {label}"),
                message: super::one_line(&e.to_string()),
            })?;
            view.slice(..contents.len()).copy_from_slice(contents);
        }
        buffer.unmap();
        Ok(buffer)
    }

    /// A storage buffer holding `data` stored as `precision`.
    pub fn upload_as(
        &self,
        label: &str,
        data: &[f32],
        precision: super::Precision,
    ) -> Result<wgpu::Buffer> {
        self.upload(label, &precision.encode(data))
    }

    /// An uninitialised storage buffer of `bytes` bytes (rounded up to 4).
    pub fn alloc(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        let size = bytes.max(4).div_ceil(4) * 4;
        self.check_size(label, size)?;
        self.scoped(label, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage: USAGE,
                mapped_at_creation: false,
            })
        })
    }

    /// Fills a buffer with NaN so that any element a kernel fails to write shows up.
    pub fn poison(&self, buf: &wgpu::Buffer) {
        let words = (buf.size() / 4) as usize;
        let nan = vec![POISON_BITS; words];
        self.queue.write_buffer(buf, 0, bytemuck::cast_slice(&nan));
    }

    /// Overwrites the start of a buffer with `data`.
    pub fn write<T: bytemuck::Pod>(&self, buf: &wgpu::Buffer, data: &[T]) {
        self.queue.write_buffer(buf, 0, bytemuck::cast_slice(data));
    }

    /// Copies `count` elements from the start of `buf` back to the host, waiting for it
    /// (natively; a page cannot wait: [`Gpu::read_async`]).
    pub fn read<T: bytemuck::Pod>(&self, buf: &wgpu::Buffer, count: usize) -> Result<Vec<T>> {
        super::blocking(self.read_async(buf, count))
    }

    /// [`Gpu::read`] as a future: what a browser page awaits.
    pub async fn read_async<T: bytemuck::Pod>(
        &self,
        buf: &wgpu::Buffer,
        count: usize,
    ) -> Result<Vec<T>> {
        let bytes = (count * std::mem::size_of::<T>()) as u64;
        if bytes > buf.size() {
            return Err(Error::Shape(format!(
                "read of {bytes} bytes from a buffer of {}",
                buf.size()
            )));
        }
        if bytes == 0 {
            return Ok(Vec::new());
        }
        let staging = self.readback_buffer("readback", bytes)?;
        self.run("readback", |enc| {
            enc.copy_buffer_to_buffer(buf, 0, &staging, 0, bytes);
            Ok(())
        })?;
        self.map_read_async(&staging, "readback").await
    }

    /// A host-mappable buffer that copies land in for reading back.
    pub fn readback_buffer(&self, label: &str, bytes: u64) -> Result<wgpu::Buffer> {
        self.scoped(label, || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(4),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })
    }

    /// Maps a readback buffer after its copies were submitted, waits, and returns its whole
    /// contents as `T` (natively; a page cannot wait: [`Gpu::map_read_async`]).
    pub fn map_read<T: bytemuck::Pod>(&self, staging: &wgpu::Buffer, op: &str) -> Result<Vec<T>> {
        super::blocking(self.map_read_async(staging, op))
    }

    /// [`Gpu::map_read`] as a future. Natively the map's callback runs inside the wait's
    /// poll, so the future is ready when the wait returns; in a browser it runs from the
    /// page's event loop while the future is pending.
    pub async fn map_read_async<T: bytemuck::Pod>(
        &self,
        staging: &wgpu::Buffer,
        op: &str,
    ) -> Result<Vec<T>> {
        let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait(op)?;
        let mapped = rx.receive().await;
        // What the page's error scopes caught meanwhile (see `Gpu::scoped`).
        self.check_lost(op)?;
        mapped
            .ok_or_else(|| "the map's callback was dropped".to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|message| Error::Gpu {
                op: op.into(),
                message,
            })?;
        let view = staging.get_mapped_range(..).map_err(|e| Error::Gpu {
            op: op.into(),
            message: super::one_line(&e.to_string()),
        })?;
        // The mapped range need not be aligned for T; copy through bytes.
        let count = view.len() / std::mem::size_of::<T>();
        let mut out = vec![T::zeroed(); count];
        bytemuck::cast_slice_mut::<T, u8>(&mut out)
            .copy_from_slice(&view[..count * std::mem::size_of::<T>()]);
        drop(view);
        staging.unmap();
        Ok(out)
    }
}
