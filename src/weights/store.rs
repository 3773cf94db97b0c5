//! Module parameters to and from safetensors bytes, with int8 weights.
//!
//! A tensor is named by its module path (`down0.conv1.weight`). Convolution and linear weights are
//! stored as I8 with a companion F32 tensor `<name>.scale` of one scale per output channel: axis 0
//! for a rank-4 convolution weight `[out, in, kh, kw]`, axis 1 for a rank-2 linear weight
//! `[in, out]`. Everything else (biases, norms, embeddings), and the weights a network names as
//! too sensitive for int8 (`UNet::F32_WEIGHTS`), is stored as F32.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use super::quant::{dequantize, quantize, Quantized};
use crate::Error;

/// The safetensors metadata key that names this layout, and its value.
pub const FORMAT_KEY: &str = "format";
pub const FORMAT: &str = "guided-ddpm-int8-v1";

/// The output-channel axis of a quantizable weight: `Some(axis)` for convolution and linear
/// weights, `None` for tensors kept in f32.
///
/// A convolution with one output channel stays f32: there one scale would cover the whole
/// tensor. That is the U-Net's last layer, which writes eps itself; int8 there made the digits'
/// strokes bolder (mean ink 0.149 against 0.139 for the float weights, 40 unguided samples at
/// step 26,089, same seeds; 0.140 with that layer alone kept f32), for 780 bytes more.
fn quant_axis(container: &str, field: &str, shape: &[usize]) -> Option<usize> {
    match (container, field, shape.len()) {
        ("Conv2d", "weight", 4) if shape[0] > 1 => Some(0),
        ("Linear", "weight", 2) => Some(1),
        _ => None,
    }
}

/// Tracks the module path during a visit or a map.
#[derive(Default)]
struct Path {
    names: Vec<String>,
    containers: Vec<String>,
}

impl Path {
    fn enter(&mut self, name: &str, container: &str) {
        self.names.push(name.to_string());
        self.containers.push(container.to_string());
    }
    fn exit(&mut self) {
        self.names.pop();
        self.containers.pop();
    }
    /// The dotted name of a parameter reached by the current path.
    fn name(&self) -> String {
        self.names.join(".")
    }
    /// (type of the module that owns the current parameter, the parameter's field name).
    /// burn names each path segment together with the type of the module holding it, as
    /// `Struct:Conv2d`.
    fn owner(&self) -> (&str, &str) {
        let container = self.containers.last().map(String::as_str).unwrap_or("");
        let container = container.strip_prefix("Struct:").unwrap_or(container);
        (
            container,
            self.names.last().map(String::as_str).unwrap_or(""),
        )
    }
}

/// A tensor read from a file, dequantized to f32.
pub struct Stored {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Serializes every float parameter of `module`, quantizing convolution and linear weights
/// except those named in `keep_f32` (dotted module paths, as `up0.skip.weight`).
///
/// Reads parameters back synchronously: native only (in wasm every sync readback panics).
pub fn to_safetensors<M: Module>(module: &M, keep_f32: &[&str]) -> Result<Vec<u8>, Error> {
    struct Collect<'a> {
        path: Path,
        keep_f32: &'a [&'a str],
        out: Vec<(String, Dtype, Vec<usize>, Vec<u8>)>,
    }
    impl ModuleVisitor for Collect<'_> {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.path.enter(name, container_type);
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let tensor = param.val();
            let shape = tensor.dims().to_vec();
            let values: Vec<f32> = tensor
                .try_into_vec_as::<f32>()
                .expect("parameters read back as f32");
            let name = self.path.name();
            let (container, field) = self.path.owner();
            let axis = quant_axis(container, field, &shape)
                .filter(|_| !self.keep_f32.contains(&name.as_str()));
            match axis {
                Some(axis) => {
                    let q = quantize(&values, &shape, axis);
                    let bytes = q.values.iter().map(|&v| v as u8).collect();
                    self.out.push((
                        format!("{name}.scale"),
                        Dtype::F32,
                        vec![q.scales.len()],
                        f32_bytes(&q.scales),
                    ));
                    self.out.push((name, Dtype::I8, shape, bytes));
                }
                None => self.out.push((name, Dtype::F32, shape, f32_bytes(&values))),
            }
        }
    }
    let mut c = Collect {
        path: Path::default(),
        keep_f32,
        out: Vec::new(),
    };
    module.visit(&mut c);
    // A name that matches nothing (a renamed layer) would silently quantize what it meant to keep.
    if let Some(missing) = keep_f32.iter().find(|k| !c.out.iter().any(|o| o.0 == **k)) {
        return Err(Error::Weights(format!(
            "{missing} is to be kept f32 but is not a parameter of the network"
        )));
    }
    let views = c
        .out
        .iter()
        .map(|(n, dt, shape, bytes)| {
            safetensors::tensor::TensorView::new(*dt, shape.clone(), bytes).map(|v| (n.clone(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Weights(format!("cannot lay out the weights: {e}")))?;
    let meta = HashMap::from([(FORMAT_KEY.to_string(), FORMAT.to_string())]);
    safetensors::serialize(views, Some(meta))
        .map_err(|e| Error::Weights(format!("cannot serialize the weights: {e}")))
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f32_from(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Reads a safetensors file of this layout into f32 tensors by name.
pub fn read_safetensors(bytes: &[u8], file: &str) -> Result<HashMap<String, Stored>, Error> {
    let corrupt = |why: String| {
        Error::Weights(format!(
            "{file} is not a valid weight file ({why}); fetch it again"
        ))
    };
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| corrupt(e.to_string()))?;
    let format = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(FORMAT_KEY))
        .cloned()
        .unwrap_or_default();
    if format != FORMAT {
        return Err(Error::Weights(format!(
            "{file} has layout {format:?}, this build reads {FORMAT:?}; re-export it with `guided-ddpm export`"
        )));
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| corrupt(e.to_string()))?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        if name.ends_with(".scale") {
            continue;
        }
        let shape = view.shape().to_vec();
        let values = match view.dtype() {
            Dtype::F32 => f32_from(view.data()),
            Dtype::I8 => {
                let axis = match shape.len() {
                    4 => 0,
                    2 => 1,
                    r => return Err(corrupt(format!("{name} is int8 of rank {r}"))),
                };
                let scale = st
                    .tensor(&format!("{name}.scale"))
                    .map_err(|_| corrupt(format!("{name} has no scale")))?;
                let scales = f32_from(scale.data());
                if scale.dtype() != Dtype::F32 || scales.len() != shape[axis] {
                    return Err(corrupt(format!("{name}.scale does not match its weight")));
                }
                let values = view.data().iter().map(|&b| b as i8).collect();
                dequantize(&Quantized {
                    values,
                    scales,
                    axis,
                    shape: shape.clone(),
                })
            }
            other => return Err(corrupt(format!("{name} has dtype {other:?}"))),
        };
        out.insert(name, Stored { shape, values });
    }
    Ok(out)
}

/// Replaces every float parameter of `module` by the stored tensor of the same name, on the
/// parameter's device. Every parameter must be found with its exact shape, and every stored
/// tensor must be used.
pub fn load_into<M: Module>(
    module: M,
    mut stored: HashMap<String, Stored>,
    file: &str,
) -> Result<M, Error> {
    struct Load {
        path: Path,
        stored: HashMap<String, Stored>,
        error: Option<String>,
    }
    impl ModuleMapper for Load {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.path.enter(name, container_type);
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.exit();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let name = self.path.name();
            let expected = param.lazy_shape().to_vec();
            match self.stored.remove(&name) {
                Some(s) if s.shape == expected => {
                    let device = param.lazy_device();
                    let t = Tensor::<D>::from_data(TensorData::new(s.values, s.shape), &device);
                    Param::initialized(param.id, t)
                }
                Some(s) => {
                    self.error.get_or_insert(format!(
                        "{name} has shape {:?}, the network expects {expected:?}",
                        s.shape
                    ));
                    param
                }
                None => {
                    self.error.get_or_insert(format!("{name} is missing"));
                    param
                }
            }
        }
    }
    let mut load = Load {
        path: Path::default(),
        stored: std::mem::take(&mut stored),
        error: None,
    };
    let module = module.map(&mut load);
    let mismatch = |why: String| {
        Error::Weights(format!("{file} does not fit this network: {why}; the file and the manifest's config disagree, re-export both"))
    };
    if let Some(why) = load.error {
        return Err(mismatch(why));
    }
    if let Some(extra) = load.stored.keys().next() {
        return Err(mismatch(format!(
            "{extra} is not a parameter of the network"
        )));
    }
    Ok(module)
}
