//! The U-Net's hot chains as single kernel launches on burn's cubecl backend (WebGPU in the
//! browser; native wgpu with feature `wgpu`): GroupNorm -> scale/shift -> SiLU, and the core of
//! self-attention.
//!
//! burn's `GroupNorm` is two reductions and an elementwise pass (mean, then the mean of the
//! squared deviations, then normalise and apply the affine), and what the U-Net does with its
//! output (the timestep's scale and shift, SiLU) is more elementwise work: three launches or more
//! per norm after fusion, 20 norms per U-Net forward. [`norm_act`] computes
//!
//! ```text
//! y = (x - mean_g) / sqrt(var_g + eps) * gamma_c + beta_c      (Wu & He 2018, Eq. 1-2)
//! y = y * (1 + scale_bc) + shift_bc                            (if modulated; DDPM App. B,
//!                                                               guided-diffusion's scale-shift norm)
//! y = y * sigmoid(y)                                           (if SiLU)
//! ```
//!
//! with one workgroup per (sample, group): its units sum the group's values into shared memory
//! for the mean, then the squared deviations for the (biased) variance, as burn's GroupNorm does,
//! then write the outputs.
//!
//! [`attention`] is `softmax(q k^T / sqrt(d)) v` per head (Vaswani et al. 2017, Eq. 1) read
//! straight out of the qkv projection's `[B, N, 3C]` output: burn's ops split it into q, k and v
//! (copies), multiply, scale, take the softmax (two reductions and elementwise passes), multiply
//! again and put the heads back (a copy), about ten launches per attention block. The kernel runs
//! one workgroup per (sample, head, query): the query's N scores into shared memory, their
//! softmax, then its d outputs.
//!
//! The U-Net only runs forward while sampling, so the kernels have no backward: where the
//! tensors need gradients (the classifier's guidance gradient, training) or live on flex, these
//! functions run burn's own ops, unchanged, so the CPU path and training are bit for bit what
//! they were.

use burn::nn::GroupNorm;
use burn::tensor::activation::{silu, softmax};
use burn::tensor::Tensor;

/// GroupNorm, then (where `ss` is given) `* (1 + scale) + shift` with `ss = [scale | shift]` of
/// shape `[B, 2C]`, then (where `act`) SiLU.
///
/// # Shapes
/// - x: `[B, C, H, W]`, ss: `[B, 2C]`; output: `[B, C, H, W]`
pub fn norm_act(norm: &GroupNorm, x: Tensor<4>, ss: Option<Tensor<2>>, act: bool) -> Tensor<4> {
    #[cfg(any(target_family = "wasm", feature = "wgpu"))]
    if cube::applies(norm, &x) {
        return cube::norm_act(norm, x, ss, act);
    }
    composed(norm, x, ss, act)
}

/// [`norm_act`] in burn's ops: what the networks computed before the kernel, and still compute
/// everywhere but the cubecl backend without autodiff.
pub fn composed(norm: &GroupNorm, x: Tensor<4>, ss: Option<Tensor<2>>, act: bool) -> Tensor<4> {
    let mut h = norm.forward(x);
    if let Some(ss) = ss {
        let [b, c, _, _] = h.dims();
        let ss = ss.reshape([b, 2 * c, 1, 1]);
        let scale = ss.clone().narrow(1, 0, c);
        let shift = ss.narrow(1, c, c);
        h = h * (scale + 1.0) + shift;
    }
    if act {
        silu(h)
    } else {
        h
    }
}

/// Multi-head attention over the tokens of `qkv` (q, k, v side by side on the last axis, each
/// `heads` heads of `C / heads` channels): `softmax(q k^T / sqrt(d)) v`, heads side by side.
///
/// # Shapes
/// - qkv: `[B, N, 3C]`; output: `[B, N, C]`
pub fn attention(qkv: Tensor<3>, heads: usize) -> Tensor<3> {
    #[cfg(any(target_family = "wasm", feature = "wgpu"))]
    if cube::on_cube(&qkv) {
        return cube::attention(qkv, heads);
    }
    composed_attention(qkv, heads)
}

/// [`attention`] in burn's ops, as [`composed`] is to [`norm_act`].
pub fn composed_attention(qkv: Tensor<3>, heads: usize) -> Tensor<3> {
    let [b, n, c3] = qkv.dims();
    let (c, d) = (c3 / 3, c3 / 3 / heads);
    let split = |i: usize| {
        qkv.clone()
            .narrow(2, i * c, c)
            .reshape([b, n, heads, d])
            .swap_dims(1, 2) // [B, heads, N, d]
    };
    let (q, k, v) = (split(0), split(1), split(2));
    let attn = softmax(q.matmul(k.swap_dims(2, 3)) / (d as f64).sqrt(), 3); // [B, heads, N, N]
    attn.matmul(v).swap_dims(1, 2).reshape([b, n, c])
}

#[cfg(any(target_family = "wasm", feature = "wgpu"))]
mod cube {
    use burn::backend::tensor::FloatTensor;
    use burn::backend::{backend_extension, Backend, Dispatch, DispatchDevice};
    use burn::nn::GroupNorm;
    use burn::tensor::{DType, Tensor};
    use burn_cubecl::cubecl;
    use burn_cubecl::kernel::into_contiguous;
    use burn_cubecl::ops::numeric::empty_device_dtype;
    use burn_cubecl::CubeBackend;
    use cubecl::prelude::*;

    /// Units per workgroup: WebGPU's guaranteed `maxComputeInvocationsPerWorkgroup`, and a power
    /// of two for the tree sum.
    const UNITS: usize = 256;

    /// Attention's workgroup: at least the 49 tokens of a 7x7 map and the 32 channels of a head
    /// in one pass; larger maps and heads loop.
    const ATTENTION_UNITS: usize = 64;

    #[backend_extension(Cube, Fusion: cfg(feature = "fusion"))]
    #[allow(clippy::too_many_arguments)] // one per input the kernel reads
    pub trait FusedBackend: Backend {
        /// See [`super::norm_act`]; `ss` is read only where `modulate`.
        #[fusion(dtype = x, shape = x)]
        fn group_norm_act(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            ss: FloatTensor<Self>,
            groups: usize,
            epsilon: f64,
            modulate: bool,
            act: bool,
        ) -> FloatTensor<Self>;

        /// See [`super::attention`].
        #[fusion(dtype = qkv, shape = {
            let mut shape = qkv.clone();
            shape[2] /= 3;
            shape
        })]
        fn attention(qkv: FloatTensor<Self>, heads: usize) -> FloatTensor<Self>;
    }

    impl FusedBackend for CubeBackend {
        fn group_norm_act(
            x: FloatTensor<Self>,
            gamma: FloatTensor<Self>,
            beta: FloatTensor<Self>,
            ss: FloatTensor<Self>,
            groups: usize,
            epsilon: f64,
            modulate: bool,
            act: bool,
        ) -> FloatTensor<Self> {
            let x = into_contiguous(x);
            let (gamma, beta, ss) = (
                into_contiguous(gamma),
                into_contiguous(beta),
                into_contiguous(ss),
            );
            let shape = x.meta.shape().clone();
            let [b, c, h, w] = shape.dims();
            let out = empty_device_dtype(x.client.clone(), x.device.clone(), shape, x.dtype);
            let client = x.client.clone();
            group_norm_act_kernel::launch(
                &client,
                CubeCount::Static((b * groups) as u32, 1, 1),
                CubeDim::new_1d(UNITS as u32),
                x.into_buffer_arg(),
                gamma.into_buffer_arg(),
                beta.into_buffer_arg(),
                ss.into_buffer_arg(),
                out.clone().into_buffer_arg(),
                c,
                h * w,
                epsilon as f32,
                groups,
                modulate,
                act,
                UNITS,
            );
            out
        }

        fn attention(qkv: FloatTensor<Self>, heads: usize) -> FloatTensor<Self> {
            let qkv = into_contiguous(qkv);
            let [b, n, c3] = qkv.meta.shape().dims();
            let c = c3 / 3;
            let out = empty_device_dtype(
                qkv.client.clone(),
                qkv.device.clone(),
                [b, n, c].into(),
                qkv.dtype,
            );
            let client = qkv.client.clone();
            let d = c / heads;
            attention_kernel::launch(
                &client,
                CubeCount::Static((b * heads * n) as u32, 1, 1),
                CubeDim::new_1d(ATTENTION_UNITS as u32),
                qkv.into_buffer_arg(),
                out.clone().into_buffer_arg(),
                c,
                (d as f32).sqrt(),
                heads,
                n,
            );
            out
        }
    }

    /// One workgroup per (sample b, head h, query i): `CUBE_POS = (b * heads + h) * tokens + i`.
    /// Row t of sample b is `qkv[(b * tokens + t) * 3C ..]`: q, then k, then v, head h at
    /// `h * d` within each.
    #[cube(launch)]
    fn attention_kernel(
        qkv: &[f32],
        out: &mut [f32],
        channels: usize,
        sqrt_d: f32,
        #[comptime] heads: usize,
        #[comptime] tokens: usize,
    ) {
        let cube = CUBE_POS;
        let i = cube % tokens;
        let b = cube / tokens / heads;
        let h = (cube / tokens) % heads;
        let d = channels / heads;
        let row = 3 * channels;
        let q = (b * tokens + i) * row + h * d;
        let unit = UNIT_POS as usize;
        let stride = CUBE_DIM as usize;
        let mut p = Shared::<[f32]>::new_slice(tokens);

        // Scores q . k_j / sqrt(d).
        for j in range_stepped(unit, tokens, stride) {
            let k = (b * tokens + j) * row + channels + h * d;
            let mut dot = f32::new(0.0);
            for e in 0..d {
                dot += qkv[q + e] * qkv[k + e];
            }
            p[j] = dot / sqrt_d;
        }
        sync_cube();
        // The softmax's max and sum over N = tokens values (49 at 7x7), by every unit.
        let mut max = p[0];
        for j in 1..tokens {
            max = select(p[j] > max, p[j], max);
        }
        sync_cube(); // every unit has its max before the scores become weights
        for j in range_stepped(unit, tokens, stride) {
            p[j] = f32::exp(p[j] - max);
        }
        sync_cube();
        let mut sum = f32::new(0.0);
        for j in 0..tokens {
            sum += p[j];
        }
        // Output channel e of head h: sum_j p_j v_j,e / sum.
        for e in range_stepped(unit, d, stride) {
            let mut acc = f32::new(0.0);
            for j in 0..tokens {
                acc += p[j] * qkv[(b * tokens + j) * row + 2 * channels + h * d + e];
            }
            out[(b * tokens + i) * channels + h * d + e] = acc / sum;
        }
    }

    /// One workgroup per (sample b, group g): `CUBE_POS = b * groups + g`. The group's values are
    /// `cg = C / groups` channels of `hw` pixels, contiguous from `CUBE_POS * cg * hw`.
    #[cube(launch)]
    fn group_norm_act_kernel(
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        ss: &[f32],
        out: &mut [f32],
        channels: usize,
        hw: usize,
        epsilon: f32,
        #[comptime] groups: usize,
        #[comptime] modulate: bool,
        #[comptime] act: bool,
        #[comptime] units: usize,
    ) {
        let cube = CUBE_POS;
        let g = cube % groups;
        let b = cube / groups;
        let cg = channels / groups;
        let n = cg * hw;
        let base = cube * n;
        let unit = UNIT_POS as usize;
        let stride = CUBE_DIM as usize;
        let mut partial = Shared::<[f32]>::new_slice(units);

        let mut sum = f32::new(0.0);
        for i in range_stepped(unit, n, stride) {
            sum += x[base + i];
        }
        partial[unit] = sum;
        let mean = tree_sum(&mut partial) / f32::cast_from(n);
        sync_cube(); // every unit has read the sum before the slots are reused

        let mut squares = f32::new(0.0);
        for i in range_stepped(unit, n, stride) {
            let d = x[base + i] - mean;
            squares += d * d;
        }
        partial[unit] = squares;
        let var = tree_sum(&mut partial) / f32::cast_from(n);
        let std = f32::sqrt(var + epsilon);

        let row = b * 2 * channels;
        for i in range_stepped(unit, n, stride) {
            let c = g * cg + i / hw;
            let normed = (x[base + i] - mean) / std * gamma[c] + beta[c];
            let mut y = normed;
            if modulate {
                y = normed * (f32::new(1.0) + ss[row + c]) + ss[row + channels + c];
            }
            if act {
                y = y / (f32::new(1.0) + f32::exp(-y));
            }
            out[base + i] = y;
        }
    }

    /// The sum of `partial[0..CUBE_DIM]` (a power of two), by halving; every unit gets it.
    #[cube]
    fn tree_sum(partial: &mut Shared<[f32]>) -> f32 {
        sync_cube();
        let mut active = CUBE_DIM / 2;
        while active > 0 {
            if UNIT_POS < active {
                let other = partial[(UNIT_POS + active) as usize];
                partial[UNIT_POS as usize] += other;
            }
            sync_cube();
            active /= 2;
        }
        partial[0]
    }

    /// Whether a tensor is float32 on a cubecl device without autodiff, where the kernels run.
    pub fn on_cube<const D: usize>(x: &Tensor<D>) -> bool {
        matches!(x.device().as_dispatch(), DispatchDevice::Cube(_)) && x.dtype() == DType::F32
    }

    /// Whether the GroupNorm kernel applies: [`on_cube`], and an affine norm.
    pub fn applies(norm: &GroupNorm, x: &Tensor<4>) -> bool {
        on_cube(x) && norm.gamma.is_some() && norm.beta.is_some()
    }

    /// [`super::norm_act`] by the kernel, where [`applies`] holds.
    pub fn norm_act(norm: &GroupNorm, x: Tensor<4>, ss: Option<Tensor<2>>, act: bool) -> Tensor<4> {
        let (Some(gamma), Some(beta)) = (&norm.gamma, &norm.beta) else {
            unreachable!("applies() checked the affine parameters");
        };
        let (gamma, beta) = (gamma.val(), beta.val());
        let modulate = ss.is_some();
        let ss = ss.unwrap_or_else(|| gamma.clone().reshape([1, -1]));
        let out = <Dispatch as FusedBackend>::group_norm_act(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            ss.into_dispatch(),
            norm.num_groups,
            norm.epsilon,
            modulate,
            act,
        );
        Tensor::from_dispatch(out)
    }

    /// [`super::attention`] by the kernel, where [`on_cube`] holds.
    pub fn attention(qkv: Tensor<3>, heads: usize) -> Tensor<3> {
        Tensor::from_dispatch(<Dispatch as FusedBackend>::attention(
            qkv.into_dispatch(),
            heads,
        ))
    }
}
