//! The classifier's reading of a noisy digit and its gradient with respect to x_t, by autodiff
//! (guided-diffusion's `cond_fn`): the only part of guidance that runs the classifier.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor};

use crate::nn::embedding::sinusoidal;
use crate::nn::{dense, one_hot, t_tensor, Classifier};

/// log p_phi(y | x_t, t) and its gradient with respect to x_t, by autodiff through the
/// classifier (guided-diffusion `cond_fn`). The classifier must live on an autodiff device,
/// frozen; every call runs a fresh forward, since `backward` consumes the graph.
///
/// # Shapes
/// - x: `[B, 1, 28, 28]` on any device; t: `[B]` timestep indices as floats; y: B labels
/// - output: (gradient `[B, 1, 28, 28]` on x's device, log p(y | x_t) `[B]` on x's device)
pub fn classifier_grad(
    classifier: &Classifier,
    x: Tensor<4>,
    t: Tensor<1>,
    y: &[usize],
) -> (Tensor<4>, Tensor<1>) {
    let (emb, onehot) = classifier_inputs(classifier, t, y);
    let out = classifier_grad_with(classifier, x, emb, onehot);
    (out.grad, out.log_p)
}

/// What [`classifier_grad_with`] computes, on x's device.
pub struct ClassifierGrad {
    /// grad_x log p_phi(y | x_t, t), `[B, 1, 28, 28]`.
    pub grad: Tensor<4>,
    /// log p_phi(y | x_t, t) of each sample's asked class, `[B]`.
    pub log_p: Tensor<1>,
    /// log p_phi(c | x_t, t) of every class c, `[B, 10]`.
    pub log_probs: Tensor<2>,
}

/// The classifier's per-step inputs from timestep indices `t` (`[B]`, on the device of the
/// returned tensors) and labels `y`: its [`embedding`](classifier_embedding) `[B, emb_dim]` and
/// one-hot rows `[B, 10]`, as [`classifier_grad_with`] and [`classifier_log_prob_with`] take them.
pub fn classifier_inputs(
    classifier: &Classifier,
    t: Tensor<1>,
    y: &[usize],
) -> (Tensor<2>, Tensor<2>) {
    let onehot = one_hot(y, &t.device());
    let features = sinusoidal(t, classifier.sinusoid_dim());
    (classifier_embedding(classifier, features), onehot)
}

/// [`Classifier::embedding`] of sinusoidal timestep features `[B, sinusoid_dim]` on a device
/// without autodiff, for a classifier that lives on that device's autodiff twin; the result is
/// on the features' device (no gradient flows through it).
pub fn classifier_embedding(classifier: &Classifier, t_features: Tensor<2>) -> Tensor<2> {
    classifier.embedding(t_features.autodiff()).inner()
}

/// The classifier's embedding of t = 0 for `b` samples on `device` (no autodiff): what the x0
/// form of the gradient reads at every step ([`Grad::X0`]).
pub fn clean_embedding(classifier: &Classifier, b: usize, device: &Device) -> Tensor<2> {
    let t0 = t_tensor(&vec![0; b], device);
    classifier_embedding(classifier, sinusoidal(t0, classifier.sinusoid_dim()))
}

/// [`classifier_grad`] with the classifier's embedding and the labels as one-hot rows
/// (`[B, 10]`), both on x's device: what a step whose inputs were made once per run passes
/// (`replay::ReplayRun`). Also returns every class's log-probability.
pub fn classifier_grad_with(
    classifier: &Classifier,
    x: Tensor<4>,
    emb: Tensor<2>,
    onehot: Tensor<2>,
) -> ClassifierGrad {
    let device = x.device();
    let b = x.dims()[0];
    let x_in = x.detach().autodiff().require_grad();
    let features = classifier.features_embedded(x_in.clone(), emb.autodiff());
    let log_probs = log_softmax(classifier.head_forward(features), 1); // [B, 10]
    let selected = (log_probs.clone() * onehot.autodiff())
        .sum_dim(1)
        .reshape([b]); // [B]
                       // Samples do not interact, so the gradient of the sum is each sample's own gradient.
    let grads = selected.clone().sum().backward();
    let grad = x_in
        .grad(&grads)
        .expect("x_t requires a gradient")
        .to_device(&device);
    ClassifierGrad {
        grad: dense(grad),
        log_p: selected.inner().to_device(&device),
        log_probs: log_probs.inner().to_device(&device),
    }
}

/// log p_phi(y | x_t, t) without a gradient.
pub fn classifier_log_prob(
    classifier: &Classifier,
    x: Tensor<4>,
    t: Tensor<1>,
    y: &[usize],
) -> Tensor<1> {
    let (emb, onehot) = classifier_inputs(classifier, t, y);
    classifier_log_prob_with(classifier, x, emb, onehot).0
}

/// [`classifier_log_prob`] with the inputs of [`classifier_grad_with`]: (log p of each
/// sample's asked class `[B]`, log p of every class `[B, 10]`).
pub fn classifier_log_prob_with(
    classifier: &Classifier,
    x: Tensor<4>,
    emb: Tensor<2>,
    onehot: Tensor<2>,
) -> (Tensor<1>, Tensor<2>) {
    let device = x.device();
    let b = x.dims()[0];
    let features = classifier.features_embedded(x.autodiff(), emb.autodiff());
    let log_probs = log_softmax(classifier.head_forward(features), 1).inner();
    let log_probs = log_probs.to_device(&device);
    let selected = (log_probs.clone() * onehot).sum_dim(1).reshape([b]);
    (selected, log_probs)
}
