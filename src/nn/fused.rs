//! GroupNorm -> scale/shift -> SiLU in one kernel launch, for the U-Net's forward on burn's
//! cubecl backend (WebGPU in the browser; native wgpu with feature `wgpu`).
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
//! then write the outputs. The U-Net only runs forward while sampling, so the kernel has no
//! backward: where the tensors need gradients (the classifier's guidance gradient, training) or
//! live on flex, [`norm_act`] runs burn's own ops, unchanged, so the CPU path and training are
//! bit for bit what they were.

use burn::nn::GroupNorm;
use burn::tensor::activation::silu;
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

    #[backend_extension(Cube, Fusion: cfg(feature = "fusion"))]
    #[allow(clippy::too_many_arguments)] // one per input the kernel reads
    pub trait NormActBackend: Backend {
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
    }

    impl NormActBackend for CubeBackend {
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

    /// Whether the kernel applies: a float32 input on a cubecl device without autodiff, and an
    /// affine norm.
    pub fn applies(norm: &GroupNorm, x: &Tensor<4>) -> bool {
        matches!(x.device().as_dispatch(), DispatchDevice::Cube(_))
            && x.dtype() == DType::F32
            && norm.gamma.is_some()
            && norm.beta.is_some()
    }

    /// [`super::norm_act`] by the kernel, where [`applies`] holds.
    pub fn norm_act(norm: &GroupNorm, x: Tensor<4>, ss: Option<Tensor<2>>, act: bool) -> Tensor<4> {
        let (Some(gamma), Some(beta)) = (&norm.gamma, &norm.beta) else {
            unreachable!("applies() checked the affine parameters");
        };
        let (gamma, beta) = (gamma.val(), beta.val());
        let modulate = ss.is_some();
        let ss = ss.unwrap_or_else(|| gamma.clone().reshape([1, -1]));
        let out = <Dispatch as NormActBackend>::group_norm_act(
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
}
