//! What a step hands back: a [`Frame`] on the device, packed into one tensor ([`StepOut`]) so
//! the page reads it in one transfer, and read back to the host as [`FrameData`].

use burn::tensor::Tensor;
use web_time::Duration;

use crate::nn::{NUM_CLASSES, SIDE};
use crate::Error;

/// What one step hands to its observer.
pub struct Frame {
    /// Steps done so far, 1..=total.
    pub step: usize,
    pub total: usize,
    /// The original timestep index this step started from.
    pub t: usize,
    /// The sample after this step, `[B, 1, 28, 28]` in [-1, 1] (roughly, before the end).
    pub x_t: Tensor<4>,
    /// The predicted clean image at this step, `[B, 1, 28, 28]`.
    pub x0: Tensor<4>,
    /// log p_phi(y | x_t, t) of the asked class at the input of this step, `[B]`.
    pub log_p_target: Tensor<1>,
    /// log p_phi(c | x_t, t) of every class c at the input of this step, `[B, 10]`.
    pub log_probs: Tensor<2>,
    /// What the classifier's shift ([`guidance_shift`](crate::guidance::guidance_shift)) moved
    /// x_{t-1} by this step: the shift itself where it is added to the mean, the shift times
    /// [`StepCoefs::push`](crate::diffusion::StepCoefs::push) where it is taken off eps;
    /// `[B, 1, 28, 28]`, `None` when no sample of the run uses the classifier.
    pub push: Option<Tensor<4>>,
    /// Wall time of this step (without any readback by the observer).
    pub elapsed: Duration,
    /// The asked class of each sample.
    pub classes: Vec<usize>,
}

/// A frame read back to the host.
pub struct FrameData {
    /// The samples after the step, `B x 28 x 28` values in [-1, 1] (roughly, before the end).
    pub x_t: Vec<f32>,
    /// The predicted clean images, `B x 28 x 28`.
    pub x0: Vec<f32>,
    /// p_phi(y | x_t, t) of the asked class per sample.
    pub p: Vec<f32>,
    /// p_phi(c | x_t, t) of every class, `B x 10`.
    pub probs: Vec<f32>,
    /// The classifier's shift of each pixel this step ([`guidance_shift`](crate::guidance::guidance_shift)), `B x 28 x 28`;
    /// empty when no sample of the run uses the classifier.
    pub push: Vec<f32>,
}

impl Frame {
    /// The frame as one device tensor, ready to be read back in one transfer.
    pub fn into_out(self) -> StepOut {
        StepOut {
            step: self.step,
            total: self.total,
            t: self.t,
            classes: self.classes,
            frame: pack_frame(self.x_t, self.x0, self.log_probs, self.push),
        }
    }

    /// Reads the frame back without blocking, as the page needs it: one transfer for all four
    /// parts (each readback from a GPU is a round trip; docs/BENCHMARKS.md).
    pub async fn read(self) -> Result<FrameData, Error> {
        self.into_out().read().await
    }
}

/// One step's frame still on the device: x_{t-1}, predicted x0, p(asked class | x_t), every
/// class's p and the classifier's shift of each sample packed into one tensor ([`pack_frame`]),
/// read back by [`StepOut::read`].
pub struct StepOut {
    /// Steps done so far, 1..=total.
    pub step: usize,
    pub total: usize,
    /// The original timestep this step started from.
    pub t: usize,
    pub(crate) frame: Tensor<1>,
    /// The asked class of each sample, to pick p(asked class) from every class's p.
    pub(crate) classes: Vec<usize>,
}

impl StepOut {
    /// Reads the frame back without blocking, in one transfer.
    pub async fn read(self) -> Result<FrameData, Error> {
        let n = self.classes.len() * SIDE * SIDE;
        let mut x_t = read(self.frame).await?;
        let mut probs = x_t.split_off(2 * n);
        let x0 = x_t.split_off(n);
        let push = probs.split_off(self.classes.len() * NUM_CLASSES);
        // p = exp(log p), on the host: one kernel fewer in the step.
        probs.iter_mut().for_each(|v| *v = v.exp());
        let p = self
            .classes
            .iter()
            .enumerate()
            .map(|(i, &c)| probs[i * NUM_CLASSES + c])
            .collect();
        Ok(FrameData {
            x_t,
            x0,
            p,
            probs,
            push,
        })
    }
}

/// x_{t-1} `[B, 1, 28, 28]`, x0 `[B, 1, 28, 28]`, every class's log p `[B, 10]` and the
/// classifier's shift `[B, 1, 28, 28]` (if any) as one tensor of [`frame_len`] values, in that
/// order. p = exp(log p) and the asked class's p are taken on the host ([`StepOut::read`]).
pub(crate) fn pack_frame(
    x_t: Tensor<4>,
    x0: Tensor<4>,
    log_probs: Tensor<2>,
    push: Option<Tensor<4>>,
) -> Tensor<1> {
    let b = log_probs.dims()[0];
    let n = b * SIDE * SIDE;
    let mut parts = vec![
        x_t.reshape([n]),
        x0.reshape([n]),
        log_probs.reshape([b * NUM_CLASSES]),
    ];
    parts.extend(push.map(|p| p.reshape([n])));
    Tensor::cat(parts, 0)
}

/// How many values [`pack_frame`] packs for a batch of `b`, with or without the shift.
pub(crate) fn frame_len(b: usize, push: bool) -> usize {
    (2 + push as usize) * b * SIDE * SIDE + b * NUM_CLASSES
}

/// Reads a tensor back without blocking (every synchronous readback panics in the browser).
pub async fn read<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, Error> {
    let data = t.into_data_async().await.map_err(|e| {
        Error::Setting(format!(
            "the GPU stopped answering ({e:?}); reload the page to start again"
        ))
    })?;
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| Error::Setting(format!("unexpected tensor data: {e:?}")))
}
