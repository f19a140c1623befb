//! Running a training step: the batch staged into the step's buffers, every micro-batch's
//! forward, loss and backward, the overflow check and the update recorded into one command
//! encoder and submitted once, and the per-image loss and correctness read back; with loss
//! scaling, the scale's schedule advanced.

use super::layout::Work;
use super::{LossScaler, StepStats, Trainer};
use crate::error::{Error, Result};
use crate::kernels::{self, Bound};
use crate::model::Tensor;

impl Trainer<'_> {
    /// One optimisation step at learning rate `lr` over `batch * accumulate` images (NCHW)
    /// with their labels. One queue submission; reads back only per-image loss and
    /// correctness. `stage`, `submit` and `finish` are its three parts, for a caller that
    /// uploads the next batch while this one runs.
    pub fn step(&mut self, images: &Tensor, labels: &[u32], lr: f32) -> Result<StepStats> {
        crate::gpu::blocking(self.step_async(images, labels, lr))
    }

    /// [`Trainer::step`] as a future: what a browser page awaits (natively `step` blocks
    /// on it).
    pub async fn step_async(
        &mut self,
        images: &Tensor,
        labels: &[u32],
        lr: f32,
    ) -> Result<StepStats> {
        self.stage(images, labels)?;
        self.submit(lr)?;
        self.finish_async().await
    }

    /// Writes the images and labels of the next step. It may be called while a step is in
    /// flight (between `submit` and `finish`): the queue copies the data after the work
    /// already submitted, so the running step keeps its own batch, and the host's copy of
    /// this batch overlaps the GPU's work.
    pub fn stage(&mut self, images: &Tensor, labels: &[u32]) -> Result<()> {
        let gpu = self.gpu;
        let (n, acc) = (self.opts.batch, self.opts.accumulate);
        let [c, h, w] = self.model.input_dims();
        if images.shape != [n * acc, c, h, w] || labels.len() != n * acc {
            return Err(Error::Shape(format!(
                "a step takes {} images of {c}x{h}x{w} and as many labels, got {:?} and {}",
                n * acc,
                images.shape,
                labels.len()
            )));
        }
        let classes = self.model.classes() as u32;
        if let Some(l) = labels.iter().find(|l| **l >= classes) {
            return Err(Error::Shape(format!(
                "label {l} is not a class of {classes}"
            )));
        }
        gpu.queue.write_buffer(
            &self.bufs[self.io.all_inputs],
            0,
            bytemuck::cast_slice(&images.data),
        );
        gpu.queue.write_buffer(
            &self.bufs[self.io.all_labels],
            0,
            bytemuck::cast_slice(labels),
        );
        self.staged = true;
        Ok(())
    }

    /// Submits one step on the staged batch at learning rate `lr`, without waiting for it.
    pub fn submit(&mut self, lr: f32) -> Result<()> {
        if !self.staged || self.in_flight {
            return Err(Error::Shape(
                "a step is submitted once after each stage, and finished before the next".into(),
            ));
        }
        let gpu = self.gpu;
        let (n, acc) = (self.opts.batch, self.opts.accumulate);
        let [c, h, w] = self.model.input_dims();
        let per = c * h * w;
        let hyper = kernels::optim::hyper(
            lr,
            self.opts.momentum,
            self.opts.weight_decay,
            self.loss_scale().0,
        );
        gpu.queue
            .write_buffer(&self.bufs[self.io.hyper], 0, bytemuck::cast_slice(&hyper));
        for (j, ids) in self.seeds.iter().enumerate() {
            // A fresh mask per layer, micro-batch and step, reproducible from the seed.
            let v: Vec<u32> = (0..acc)
                .map(|mb| {
                    let k = ((self.step * acc as u64 + mb as u64) << 8) + j as u64;
                    crate::kernels::elementwise::dropout_bits(self.opts.seed as u32, k as u32)
                })
                .collect();
            gpu.queue
                .write_buffer(&self.bufs[ids.0], 0, bytemuck::cast_slice(&v));
        }
        gpu.scoped("train step", || -> Result<()> {
            let mut enc = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("train step"),
                });
            for &(src, dst, b) in &self.bias_copies {
                enc.copy_buffer_to_buffer(&self.bufs[src], 0, &self.bufs[dst], 0, Some(b));
            }
            self.pass(&mut enc, &self.pack)?;
            for mb in 0..acc {
                let b_in = (n * per * 4) as u64;
                enc.copy_buffer_to_buffer(
                    &self.bufs[self.io.all_inputs],
                    mb as u64 * b_in,
                    &self.bufs[self.io.input],
                    0,
                    Some(b_in),
                );
                let b_l = (n * 4) as u64;
                enc.copy_buffer_to_buffer(
                    &self.bufs[self.io.all_labels],
                    mb as u64 * b_l,
                    &self.bufs[self.io.labels],
                    0,
                    Some(b_l),
                );
                for ids in &self.seeds {
                    enc.copy_buffer_to_buffer(
                        &self.bufs[ids.0],
                        mb as u64 * 4,
                        &self.bufs[ids.1],
                        0,
                        Some(4),
                    );
                }
                self.passes(&mut enc, if mb == 0 { &self.first } else { &self.rest })?;
                let b_s = (2 * n * 4) as u64;
                enc.copy_buffer_to_buffer(
                    &self.bufs[self.io.stats],
                    0,
                    &self.bufs[self.io.all_stats],
                    mb as u64 * b_s,
                    Some(b_s),
                );
            }
            // The checks set the flag the updates read: a pass of their own before them.
            if !self.overflow.is_empty() {
                self.pass(&mut enc, &self.overflow)?;
            }
            self.pass(&mut enc, &self.sgd)?;
            let stats_bytes = (2 * n * acc * 4) as u64;
            enc.copy_buffer_to_buffer(
                &self.bufs[self.io.all_stats],
                0,
                &self.readback,
                0,
                Some(stats_bytes),
            );
            let flag = (kernels::optim::OVERFLOW * 4) as u64;
            enc.copy_buffer_to_buffer(
                &self.bufs[self.io.hyper],
                flag,
                &self.readback,
                stats_bytes,
                Some(4),
            );
            gpu.submit(enc.finish());
            Ok(())
        })??;
        self.staged = false;
        self.in_flight = true;
        Ok(())
    }

    /// Waits for the submitted step and reads its loss and correct count.
    pub fn finish(&mut self) -> Result<StepStats> {
        crate::gpu::blocking(self.finish_async())
    }

    /// [`Trainer::finish`] as a future.
    pub async fn finish_async(&mut self) -> Result<StepStats> {
        if !self.in_flight {
            return Err(Error::Shape("no step was submitted to finish".into()));
        }
        let (n, acc) = (self.opts.batch, self.opts.accumulate);
        let stats: Vec<f32> = self
            .gpu
            .map_read_async(&self.readback, "train step")
            .await?;
        self.in_flight = false;
        self.step += 1;
        let rows = n * acc;
        let loss = stats[..2 * rows]
            .chunks(2)
            .map(|s| s[0] as f64)
            .sum::<f64>()
            / rows as f64;
        let correct = stats[..2 * rows].chunks(2).filter(|s| s[1] == 1.0).count();
        let skipped = stats[2 * rows].to_bits() != 0;
        let loss_scale = self.loss_scale().0;
        if let Some(s) = &mut self.scaler {
            s.update(skipped)?;
        }
        Ok(StepStats {
            loss,
            correct,
            images: rows,
            loss_scale,
            skipped,
        })
    }

    /// Whether steps are loss-scaled (f16 operands).
    pub(super) fn scaling(&self) -> bool {
        self.scaler.is_some()
    }

    /// The loss scale the next step runs at, and the clean steps since it last changed
    /// (a checkpoint's record of the schedule).
    pub fn loss_scale(&self) -> (f32, u32) {
        self.scaler.map_or((1.0, 0), |s| s.state())
    }

    /// Restores the loss-scale schedule from a checkpoint (ignored without loss scaling).
    pub fn set_loss_scale(&mut self, scale: f32, good_steps: u32) -> Result<()> {
        match &mut self.scaler {
            Some(s) => s.restore(scale, good_steps),
            None => LossScaler::check_recorded(scale),
        }
    }

    fn pass(&self, enc: &mut wgpu::CommandEncoder, ks: &[Bound]) -> Result<()> {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("train"),
            timestamp_writes: None,
        });
        for k in ks {
            k.encode(self.gpu, &mut pass)?;
        }
        Ok(())
    }

    /// Kernels in compute passes, each copy between two of them.
    fn passes(&self, enc: &mut wgpu::CommandEncoder, work: &[Work]) -> Result<()> {
        let mut rest = work;
        while !rest.is_empty() {
            let kernels = rest
                .iter()
                .position(|w| matches!(w, Work::Copy { .. }))
                .unwrap_or(rest.len());
            if kernels > 0 {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("train"),
                    timestamp_writes: None,
                });
                for w in &rest[..kernels] {
                    if let Work::Kernel(k) = w {
                        k.encode(self.gpu, &mut pass)?;
                    }
                }
            }
            if let Some(Work::Copy { src, dst, bytes }) = rest.get(kernels) {
                let (s, d) = (&self.bufs[src.0], &self.bufs[dst.0]);
                enc.copy_buffer_to_buffer(s, src.1, d, dst.1, Some(*bytes));
                rest = &rest[kernels + 1..];
            } else {
                rest = &rest[kernels..];
            }
        }
        Ok(())
    }
}
