//! The convolutions' weight gradient on flex (CPU) as a few wide matrix products.
//!
//! For a convolution `y = conv(x, W) + b` with `W` of shape `[Co, Ci, KH, KW]`, stride `s` and
//! padding `pad`, the weight gradient is
//!
//! ```text
//! dL/dW[o, c, i, j] = sum_n sum_(p, q) dy[n, o, p, q] * x[n, c, p*s + i - pad, q*s + j - pad]
//! ```
//!
//! burn's default (`conv2d_weight_backward` in burn-backend, which flex uses) computes it as a
//! convolution of the input by the output gradient with batch and channels swapped, whose matrix
//! products are `KH*KW` (9) columns wide; a `perf` profile of the trainer put 33% of a step
//! there (docs/BENCHMARKS.md). Here, at stride 1, each kernel tap `(i, j)` is one product
//! `dW[:, :, i, j] = dY X_(i,j)^T` over every output position of the batch, where `X_(i,j)` is
//! a shifted view of the zero-padded input ([`Padded`]: no im2col copy); at larger strides it is
//! `dW = dY cols(X)^T` with im2col, a few samples at a time.
//!
//! [`conv2d`] runs a `Conv2d` module's forward with this weight gradient where the tensor lives
//! on flex (with or without autodiff); everywhere else (WebGPU, the wgpu feature) it is the
//! module's own forward. The forward value and the input and bias gradients are burn's own ops,
//! unchanged. (The input gradient done the same way, per tap into the padded input's gradient,
//! was no faster than burn's at batch 32 on one thread and slower at batch 1 on two: not kept.)

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::ops::{ConvOptions, FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    backend_extension, Autodiff, AutodiffBackend, Backend, Dispatch, DispatchDevice, Flex,
    TensorMetadata,
};
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::{DType, Tensor, TensorData};
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether [`conv2d`] takes its own path where it applies (the default), or burn's everywhere:
/// `guided-ddpm bench` times training both ways in one process.
static OWN_WEIGHT_GRAD: AtomicBool = AtomicBool::new(true);

/// Sets whether [`conv2d`] uses [`weight_grad`] where it applies (true by default); with false
/// every convolution is burn's own, forward and backward.
pub fn use_own_weight_grad(on: bool) {
    OWN_WEIGHT_GRAD.store(on, Ordering::Relaxed);
}

/// The largest im2col buffer, in floats (16 MB): the batch is taken a few samples at a time so
/// the buffer stays in the allocator's reused heap and near the caches.
const COLS_FLOATS: usize = 4 << 20;

/// The geometry of one convolution: dilation 1, one group, symmetric padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub batch: usize,
    pub c_in: usize,
    pub c_out: usize,
    /// Input height and width.
    pub in_hw: [usize; 2],
    /// Kernel height and width.
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Zeros added on each side, rows then columns.
    pub pad: [usize; 2],
}

impl Geometry {
    fn check(&self, x: &[f32], dy: &[f32]) {
        let ([h, w], [p, q]) = (self.in_hw, self.out_hw());
        assert_eq!(
            x.len(),
            self.batch * self.c_in * h * w,
            "x does not match the geometry"
        );
        assert_eq!(
            dy.len(),
            self.batch * self.c_out * p * q,
            "dy does not match the geometry"
        );
    }

    /// Output height and width.
    pub fn out_hw(&self) -> [usize; 2] {
        let out =
            |d: usize| (self.in_hw[d] + 2 * self.pad[d] - self.kernel[d]) / self.stride[d] + 1;
        [out(0), out(1)]
    }
}

/// `dL/dW` (`[Co, Ci, KH, KW]`, row-major) of a convolution with geometry `g`, from its input
/// `x` (`[N, Ci, H, W]`) and output gradient `dy` (`[N, Co, P, Q]`), both row-major; see the
/// module's equation. Stride 1 by [`Padded`] views, larger strides by im2col.
pub fn weight_grad(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    g.check(x, dy);
    let [kh, kw] = g.kernel;
    let mut dw = vec![0.0f32; g.c_out * g.c_in * kh * kw];
    if g.stride != [1, 1] {
        weight_grad_im2col(x, dy, g, &mut dw);
        return dw;
    }
    let pad = Padded::new(g);
    let xp = pad.lay_out(x, g.c_in, g.in_hw, g.pad);
    let dyp = pad.lay_out(dy, g.c_out, g.out_hw(), [0, 0]);
    for i in 0..kh {
        for j in 0..kw {
            // dW[:, :, i, j] (Co x Ci) = dY (Co x K) * X shifted by the tap (K x Ci).
            matmul(
                (g.c_out, g.c_in, pad.len),
                (&mut dw, i * kw + j, g.c_in * kh * kw, kh * kw),
                false,
                (&dyp, 0, pad.stride, 1),
                (&xp, pad.offset(i, j), 1, pad.stride),
            );
        }
    }
    dw
}

/// The layout the stride-1 weight gradient works in: each channel's images of the whole batch
/// side by side, each zero-padded to `(H + 2 pad_h) x (W + 2 pad_w)`, then `slack` zeros. In it, a
/// kernel tap `(i, j)` is a shift by `i * W' + j`: the output at `(p, q)` of image `n` reads the
/// padded input at `n * plane + (p + i) * W' + (q + j)`, so one matrix product per tap covers
/// every output position of the batch at once. Output gradients laid out the same way (at the
/// top left of each plane, zeros elsewhere) make the positions that are not outputs contribute
/// nothing, and no shift reaches past a channel's slack.
struct Padded {
    /// Padded width W'.
    width: usize,
    /// Floats per padded image, H' * W'.
    plane: usize,
    /// Floats of the batch's padded images of one channel, N * plane: the products' depth.
    len: usize,
    /// Floats per channel, `len` plus the largest shift.
    stride: usize,
    kernel_w: usize,
}

impl Padded {
    fn new(g: &Geometry) -> Self {
        let width = g.in_hw[1] + 2 * g.pad[1];
        let plane = (g.in_hw[0] + 2 * g.pad[0]) * width;
        let len = g.batch * plane;
        let slack = (g.kernel[0] - 1) * width + g.kernel[1] - 1;
        Self {
            width,
            plane,
            len,
            stride: len + slack,
            kernel_w: g.kernel[1],
        }
    }

    /// The shift of kernel tap `(i, j)`.
    fn offset(&self, i: usize, j: usize) -> usize {
        debug_assert!(j < self.kernel_w);
        i * self.width + j
    }

    /// `[N, C, h, w]` row-major images in this layout, each at `at` (rows, columns) in its plane.
    fn lay_out(&self, src: &[f32], c: usize, [h, w]: [usize; 2], at: [usize; 2]) -> Vec<f32> {
        let mut out = vec![0.0f32; c * self.stride];
        for (img, chan) in src.chunks_exact(h * w).enumerate() {
            let (n, ch) = (img / c, img % c);
            let base = ch * self.stride + n * self.plane + at[0] * self.width + at[1];
            for (r, row) in chan.chunks_exact(w).enumerate() {
                out[base + r * self.width..][..w].copy_from_slice(row);
            }
        }
        out
    }
}

/// `dst = [dst +] lhs * rhs` for an `m x k` lhs and a `k x n` rhs, each operand given as (slice,
/// offset, row stride, column stride); checks that every element lies inside its slice.
fn matmul(
    (m, n, k): (usize, usize, usize),
    dst: (&mut [f32], usize, usize, usize),
    accumulate: bool,
    lhs: (&[f32], usize, usize, usize),
    rhs: (&[f32], usize, usize, usize),
) {
    let last = |rows: usize, cols: usize, at: usize, rs: usize, cs: usize| {
        at + rows.saturating_sub(1) * rs + cols.saturating_sub(1) * cs
    };
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        last(m, n, dst.1, dst.2, dst.3) < dst.0.len(),
        "matmul: dst out of bounds"
    );
    if k > 0 {
        assert!(
            last(m, k, lhs.1, lhs.2, lhs.3) < lhs.0.len(),
            "matmul: lhs out of bounds"
        );
        assert!(
            last(k, n, rhs.1, rhs.2, rhs.3) < rhs.0.len(),
            "matmul: rhs out of bounds"
        );
    }
    // SAFETY: every element the product reads or writes is inside its slice (checked above),
    // and `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.0.as_mut_ptr().add(dst.1),
            dst.3 as isize,
            dst.2 as isize,
            accumulate,
            lhs.0.as_ptr().add(lhs.1),
            lhs.3 as isize,
            lhs.2 as isize,
            rhs.0.as_ptr().add(rhs.1),
            rhs.3 as isize,
            rhs.2 as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        );
    }
}

/// [`weight_grad`] for any stride: `dW = dY cols(X)^T`, a few samples at a time.
fn weight_grad_im2col(x: &[f32], dy: &[f32], g: &Geometry, dw: &mut [f32]) {
    let [h, w] = g.in_hw;
    let [p, q] = g.out_hw();
    let (l, rows) = (p * q, g.c_in * g.kernel[0] * g.kernel[1]);
    let per_chunk = (COLS_FLOATS / (rows * l).max(1)).clamp(1, g.batch.max(1));
    let mut cols = vec![0.0f32; rows * per_chunk * l];
    let mut dys = vec![0.0f32; g.c_out * per_chunk * l];
    for n0 in (0..g.batch).step_by(per_chunk) {
        let nb = per_chunk.min(g.batch - n0);
        let k = nb * l;
        for j in 0..nb {
            let n = n0 + j;
            let sample = &x[n * g.c_in * h * w..(n + 1) * g.c_in * h * w];
            im2col(sample, g, &mut cols, k, j * l);
            for o in 0..g.c_out {
                let src = &dy[(n * g.c_out + o) * l..(n * g.c_out + o + 1) * l];
                dys[o * k + j * l..o * k + (j + 1) * l].copy_from_slice(src);
            }
        }
        // dW (Co x rows) += dY (Co x k) * cols^T (k x rows); cols is rows x k, row-major.
        matmul(
            (g.c_out, rows, k),
            (dw, 0, rows, 1),
            n0 > 0,
            (&dys, 0, k, 1),
            (&cols, 0, 1, k),
        );
    }
}

/// One sample's `[Ci, H, W]` input as im2col rows `(c, i, j)` of `cols` (row length `k`),
/// written at columns `at..at + P*Q`; padding reads as 0.
fn im2col(x: &[f32], g: &Geometry, cols: &mut [f32], k: usize, at: usize) {
    let [h, w] = g.in_hw;
    let [p, q] = g.out_hw();
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    let [ph, pw] = g.pad;
    for c in 0..g.c_in {
        let plane = &x[c * h * w..(c + 1) * h * w];
        for i in 0..kh {
            for j in 0..kw {
                let row = &mut cols[((c * kh + i) * kw + j) * k + at..][..p * q];
                // The output columns whose input column q*sw + j - pw is inside the image.
                let q_lo = pw.saturating_sub(j).div_ceil(sw).min(q);
                let q_hi = ((w + pw).saturating_sub(j)).div_ceil(sw).clamp(q_lo, q);
                for (r, out) in row.chunks_exact_mut(q).enumerate() {
                    let ih = (r * sh + i) as isize - ph as isize;
                    if ih < 0 || ih >= h as isize {
                        out.fill(0.0);
                        continue;
                    }
                    let src = &plane[ih as usize * w..(ih as usize + 1) * w];
                    out[..q_lo].fill(0.0);
                    out[q_hi..].fill(0.0);
                    let first = q_lo * sw + j - pw;
                    if sw == 1 {
                        out[q_lo..q_hi].copy_from_slice(&src[first..first + (q_hi - q_lo)]);
                    } else {
                        for (o, v) in out[q_lo..q_hi]
                            .iter_mut()
                            .zip(src[first..].iter().step_by(sw))
                        {
                            *o = *v;
                        }
                    }
                }
            }
        }
    }
}

/// A `Conv2d` module's forward, with [`weight_grad`] as its weight gradient where the input is
/// on flex in f32 and the module has one group, dilation 1, a bias and symmetric
/// explicit padding; otherwise `conv.forward(x)`.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let Some(pad) = applies(conv, &x) else {
        return conv.forward(x);
    };
    let Some(bias) = &conv.bias else {
        return conv.forward(x);
    };
    let out = <Dispatch as FlexConv>::conv2d_flex(
        x.into_dispatch(),
        conv.weight.val().into_dispatch(),
        bias.val().into_dispatch(),
        conv.stride[0],
        conv.stride[1],
        pad[0],
        pad[1],
    );
    Tensor::from_dispatch(out)
}

/// The padding of `conv` where [`conv2d`]'s own path applies to it and `x` (the bias is
/// checked there).
fn applies(conv: &Conv2d, x: &Tensor<4>) -> Option<[usize; 2]> {
    if !OWN_WEIGHT_GRAD.load(Ordering::Relaxed) {
        return None;
    }
    let on_flex = matches!(
        x.device().as_dispatch().clone().inner(),
        DispatchDevice::Flex(_)
    );
    let simple = conv.groups == 1 && conv.dilation == [1, 1];
    match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right)
            if on_flex && simple && x.dtype() == DType::F32 && top == bottom && left == right =>
        {
            Some([top, left])
        }
        _ => None,
    }
}

#[backend_extension(Flex, Autodiff)]
pub trait FlexConv: Backend {
    /// `conv2d(x, weight, bias)` with dilation 1 and one group; see [`conv2d`].
    fn conv2d_flex(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self>;

    /// [`weight_grad`] on this backend's tensors; `weight` gives the gradient's shape.
    fn conv2d_flex_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self>;
}

/// The geometry of a convolution of `x` by `weight`.
fn geometry(x: &[usize], weight: &[usize], stride: [usize; 2], pad: [usize; 2]) -> Geometry {
    Geometry {
        batch: x[0],
        c_in: x[1],
        c_out: weight[0],
        in_hw: [x[2], x[3]],
        kernel: [weight[2], weight[3]],
        stride,
        pad,
    }
}

impl FlexConv for Flex {
    fn conv2d_flex(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self> {
        let options = ConvOptions::new([stride_h, stride_w], [pad_h, pad_w], [1, 1], 1);
        Flex::conv2d(x, weight, Some(bias), options)
    }

    fn conv2d_flex_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self> {
        let shape = weight.shape();
        let g = geometry(&x.shape(), &shape, [stride_h, stride_w], [pad_h, pad_w]);
        let (x, dy) = (x.to_contiguous(), output_grad.to_contiguous());
        let dw = weight_grad(x.storage::<f32>(), dy.storage::<f32>(), &g);
        Flex::float_from_data(TensorData::new(dw, shape), &Default::default())
    }
}

impl<B: Backend + FlexConv, C: CheckpointStrategy> FlexConv for Autodiff<B, C> {
    fn conv2d_flex(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self> {
        /// burn-autodiff's `Conv2DWithBias` backward (ops/module.rs) with
        /// [`FlexConv::conv2d_flex_weight_grad`] for the weight.
        #[derive(Debug)]
        struct ConvBackward;

        impl<B: Backend + FlexConv> Backward<B, 3> for ConvBackward {
            type State = (NodeId, NodeId, NodeId, [usize; 4]);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                checkpointer: &mut Checkpointer,
            ) {
                let [node_x, node_weight, node_bias] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, weight_state, bias_state, [sh, sw, ph, pw]) = ops.state;
                let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
                let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
                let bias = checkpointer.retrieve_node_output::<FloatTensor<B>>(bias_state);
                if let Some(node) = node_x {
                    let options = ConvOptions::new([sh, sw], [ph, pw], [1, 1], 1);
                    let dx = B::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options);
                    grads.register::<B>(node.id, dx);
                }
                if let Some(node) = node_weight {
                    let dw =
                        B::conv2d_flex_weight_grad(x.clone(), weight, grad.clone(), sh, sw, ph, pw);
                    grads.register::<B>(node.id, dw);
                }
                if let Some(node) = node_bias {
                    grads.register::<B>(node.id, B::conv2d_bias_backward(x, bias, grad));
                }
            }
        }

        let forward =
            |x, weight, bias| B::conv2d_flex(x, weight, bias, stride_h, stride_w, pad_h, pad_w);
        match ConvBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let bias_state = prep.checkpoint(&bias);
                prep.finish(
                    (
                        x_state,
                        weight_state,
                        bias_state,
                        [stride_h, stride_w, pad_h, pad_w],
                    ),
                    forward(
                        x.into_primitive(),
                        weight.into_primitive(),
                        bias.into_primitive(),
                    ),
                )
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
            )),
        }
    }

    fn conv2d_flex_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        stride_h: usize,
        stride_w: usize,
        pad_h: usize,
        pad_w: usize,
    ) -> FloatTensor<Self> {
        // Not differentiated itself: the inner backend's value as a new leaf.
        Self::from_inner(B::conv2d_flex_weight_grad(
            Self::inner(x),
            Self::inner(weight),
            Self::inner(output_grad),
            stride_h,
            stride_w,
            pad_h,
            pad_w,
        ))
    }
}
