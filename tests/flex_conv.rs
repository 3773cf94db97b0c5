//! The convolutions' own weight gradient on flex (src/nn/flex_conv.rs) against burn's: the same
//! forward value and the same gradients of the input, weight and bias, through autodiff, for
//! the geometries the networks use (3x3 "same" at stride 1 and 2, 1x1) and an odd-sized one.
//! Checked by hand: the weight check fails with every image laid out as the batch's first
//! (stride 1, `Padded::lay_out`), with every sample's output gradient taken from the first
//! (stride 2, im2col) and with im2col's kernel taps transposed.
#![cfg(not(target_family = "wasm"))]

use burn::nn::conv::Conv2dConfig;
use burn::nn::PaddingConfig2d;
use burn::tensor::{Device, Distribution, Tensor};
use guided_ddpm::nn::blocks::conv;
use guided_ddpm::nn::flex_conv::{weight_grad, Geometry};

/// The largest absolute difference of two tensors, over the largest absolute entry of `want`.
fn gap<const D: usize>(got: Tensor<D>, want: Tensor<D>) -> f32 {
    let scale = want.clone().abs().max().into_scalar::<f32>().max(1e-12);
    (got - want).abs().max().into_scalar::<f32>() / scale
}

/// (batch, c_in, c_out, [h, w], kernel, stride, pad)
type Case = (usize, usize, usize, [usize; 2], usize, usize, usize);

const CASES: [Case; 5] = [
    (3, 4, 5, [7, 7], 3, 1, 1),
    (2, 3, 6, [8, 8], 3, 2, 1),
    (2, 5, 3, [7, 7], 3, 2, 1),
    (2, 4, 3, [5, 6], 1, 1, 0),
    (1, 2, 2, [6, 5], 3, 1, 1),
];

#[test]
fn flex_conv_matches_burns_value_and_gradients() {
    let device = Device::flex().autodiff();
    device.seed(7);
    for (batch, c_in, c_out, [h, w], k, s, p) in CASES {
        let module = Conv2dConfig::new([c_in, c_out], [k, k])
            .with_stride([s, s])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .init(&device);
        let x = Tensor::<4>::random([batch, c_in, h, w], Distribution::Normal(0.0, 1.0), &device);
        let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
        let r = Tensor::<4>::random(
            [batch, c_out, oh, ow],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let run = |ours: bool| {
            let x = x.clone().detach().require_grad();
            let y = if ours {
                conv(&module, x.clone())
            } else {
                module.forward(x.clone())
            };
            // A fixed random output gradient: d(sum(y * r))/dy = r.
            let grads = (y.clone() * r.clone()).sum().backward();
            let bias = module.bias.as_ref().expect("bias");
            (
                y.inner(),
                x.grad(&grads).expect("x grad"),
                module.weight.val().grad(&grads).expect("weight grad"),
                bias.val().grad(&grads).expect("bias grad"),
            )
        };
        let (y, dx, dw, db) = run(true);
        let (y0, dx0, dw0, db0) = run(false);
        let case = format!("batch {batch}, {c_in}->{c_out}, {h}x{w}, k {k}, stride {s}, pad {p}");
        assert!(gap(y, y0) < 1e-6, "value, {case}");
        assert!(gap(dx, dx0) < 1e-5, "x gradient, {case}");
        assert!(gap(dw, dw0) < 1e-5, "weight gradient, {case}");
        assert!(gap(db, db0) < 1e-5, "bias gradient, {case}");
    }
}

/// A hand-computed case: one 3x3 input, one 2x2 kernel, stride 1, no padding, dy all ones, so
/// dW[i, j] is the sum of the 2x2 window of x at (i, j); with padding 1 and dy = 1 on the 4x4
/// output, every weight sees every pixel once: dW = sum(x) = 45 everywhere.
#[test]
fn weight_grad_of_a_hand_computed_case() {
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let g = Geometry {
        batch: 1,
        c_in: 1,
        c_out: 1,
        in_hw: [3, 3],
        kernel: [2, 2],
        stride: [1, 1],
        pad: [0, 0],
    };
    assert_eq!(g.out_hw(), [2, 2]);
    assert_eq!(weight_grad(&x, &[1.0; 4], &g), vec![12.0, 16.0, 24.0, 28.0]);
    let padded = Geometry { pad: [1, 1], ..g };
    assert_eq!(padded.out_hw(), [4, 4]);
    assert_eq!(weight_grad(&x, &[1.0; 16], &padded), vec![45.0; 4]);
}
