//! The weight files: int8 round trip, manifest checks, and errors for bad files.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use guided_ddpm::nn::{label_tensor, t_tensor, ClassifierConfig, UNet, UNetConfig};
use guided_ddpm::schedule::BetaSchedule;
use guided_ddpm::weights::manifest::{sha256_hex, NetFile, ScheduleInfo};
use guided_ddpm::weights::{self, store, Manifest, FORMAT_VERSION};

fn small_unet() -> UNetConfig {
    UNetConfig::new()
        .with_channels([8, 16, 16])
        .with_emb_dim(16)
        .with_heads(2)
}

fn small_classifier() -> ClassifierConfig {
    ClassifierConfig::new()
        .with_channels([8, 8, 16])
        .with_emb_dim(8)
}

/// Every float parameter, flattened, in visiting order.
fn params<M: Module>(m: &M) -> Vec<Vec<f32>> {
    struct V(Vec<Vec<f32>>);
    impl ModuleVisitor for V {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.0.push(p.val().try_into_vec_as::<f32>().unwrap());
        }
    }
    let mut v = V(Vec::new());
    m.visit(&mut v);
    v.0
}

fn manifest_for(unet: &[u8], classifier: &[u8]) -> Manifest {
    Manifest {
        format_version: FORMAT_VERSION,
        schedule: ScheduleInfo {
            kind: BetaSchedule::Linear,
            steps: 1000,
        },
        unet: NetFile {
            file: "unet.safetensors".into(),
            bytes: unet.len(),
            sha256: sha256_hex(unet),
            config: small_unet(),
        },
        classifier: NetFile {
            file: "classifier.safetensors".into(),
            bytes: classifier.len(),
            sha256: sha256_hex(classifier),
            config: small_classifier(),
        },
        provenance: serde_json::json!({}),
    }
}

#[test]
fn int8_round_trip_stays_within_half_a_step_and_keeps_the_output() {
    let device = Device::flex();
    let unet = small_unet().init(&device);
    let bytes = store::to_safetensors(&unet, UNet::F32_WEIGHTS).unwrap();
    let cbytes = store::to_safetensors(&small_classifier().init(&device), &[]).unwrap();
    let manifest = manifest_for(&bytes, &cbytes);
    let loaded = weights::unet_from_bytes(&manifest, &bytes, &device).unwrap();
    let (a, b) = (params(&unet), params(&loaded));
    assert_eq!(a.len(), b.len());
    let mut quantized = 0;
    for (pa, pb) in a.iter().zip(&b) {
        let max = pa.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = pa
            .iter()
            .zip(pb)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        // f32 tensors come back exactly; int8 ones within half a step of the largest scale.
        assert!(err <= max / 127.0 / 2.0 + 1e-7, "error {err} for max {max}");
        quantized += (err > 0.0) as usize;
    }
    assert!(
        quantized > 10,
        "convolution and linear weights are quantized"
    );
    // The last layer (one output channel, so one scale for the whole tensor) and the layers the
    // U-Net names stay f32; the first convolution (one input channel, 32 outputs) is int8.
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let dtype = |name: &str| st.tensor(name).unwrap().dtype();
    assert_eq!(dtype("out.conv.weight"), safetensors::Dtype::F32);
    assert!(UNet::F32_WEIGHTS.contains(&"up0.skip.weight"));
    for name in UNet::F32_WEIGHTS {
        assert_eq!(dtype(name), safetensors::Dtype::F32, "{name}");
    }
    assert_eq!(dtype("up1.skip.weight"), safetensors::Dtype::I8);
    assert_eq!(dtype("inc.weight"), safetensors::Dtype::I8);
    // A name that is not a parameter is an error, not a silent int8 export.
    let err = store::to_safetensors(&unet, &["up0.skp.weight"])
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("up0.skp.weight") && err.contains("not a parameter"),
        "{err}"
    );
    // The int8 network computes nearly the same eps.
    let x = Tensor::<4>::ones([2, 1, 28, 28], &device) * 0.3;
    let run = |m: &guided_ddpm::nn::UNet| {
        m.forward(
            x.clone(),
            t_tensor(&[10, 900], &device),
            label_tensor(&[2, 10], &device),
        )
        .try_into_vec_as::<f32>()
        .unwrap()
    };
    let (ya, yb) = (run(&unet), run(&loaded));
    let scale = ya.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = ya
        .iter()
        .zip(&yb)
        .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
    assert!(
        diff < 0.05 * scale,
        "int8 output moved by {diff} (output scale {scale})"
    );
    // And the classifier file decodes too.
    weights::classifier_from_bytes(&manifest, &cbytes, &device).unwrap();
}

#[test]
fn a_wrong_hash_a_truncated_file_and_a_wrong_version_are_explained() {
    let device = Device::flex();
    let bytes = store::to_safetensors(&small_unet().init(&device), UNet::F32_WEIGHTS).unwrap();
    let manifest = manifest_for(&bytes, &[]);

    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let err = weights::unet_from_bytes(&manifest, &flipped, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("sha256") && err.contains("fetch it again"),
        "{err}"
    );

    let err = weights::unet_from_bytes(&manifest, &bytes[..bytes.len() / 2], &device)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("cut short"), "{err}");

    let mut m = manifest.to_json().replace(
        &format!("\"format_version\": {FORMAT_VERSION}"),
        "\"format_version\": 99",
    );
    let err = Manifest::parse(&m).err().unwrap().to_string();
    assert!(err.contains("format version 99"), "{err}");
    m = "{ not json".into();
    assert!(Manifest::parse(&m)
        .err()
        .unwrap()
        .to_string()
        .contains("manifest.json is not valid"));
}

#[test]
fn garbage_and_mismatched_files_give_errors_not_panics() {
    let device = Device::flex();
    let err = store::read_safetensors(b"definitely not safetensors", "unet.safetensors")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not a valid weight file"), "{err}");

    // A file of another network shape: every tensor is checked against the config.
    let other = store::to_safetensors(
        &UNetConfig::new()
            .with_channels([8, 16, 24])
            .with_emb_dim(16)
            .with_heads(2)
            .init(&device),
        UNet::F32_WEIGHTS,
    )
    .unwrap();
    let manifest = manifest_for(&other, &[]);
    let err = weights::unet_from_bytes(&manifest, &other, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("does not fit this network"), "{err}");

    // A classifier file offered as the U-Net.
    let cls = store::to_safetensors(&small_classifier().init(&device), &[]).unwrap();
    let manifest = manifest_for(&cls, &[]);
    let err = weights::unet_from_bytes(&manifest, &cls, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("does not fit this network"), "{err}");
}

/// A manifest is input: shapes the layers cannot take, a hash that is not hex (non-ASCII once
/// tripped a slice panic), a file name that is a path, and a schedule of another length are each
/// a sentence from `Manifest::parse`, before any layer is built (before `Manifest::check`, each of
/// these parsed, and `heads: 3` then reached the attention layer's assert).
#[test]
fn an_impossible_manifest_is_explained_not_asserted() {
    let base = manifest_for(b"u", b"c");
    let cases: Vec<(Manifest, &str)> = vec![
        (
            {
                let mut m = base.clone();
                m.unet.config.heads = 3;
                m
            },
            "3 attention heads, which must divide its 16 channels",
        ),
        (
            {
                let mut m = base.clone();
                m.unet.config.channels = [12, 16, 16];
                m
            },
            "a layer of 12 channels; each must be a multiple of 8",
        ),
        (
            {
                let mut m = base.clone();
                m.classifier.config.channels = [8, 8, 1 << 20];
                m
            },
            "a layer of 1048576 channels",
        ),
        (
            {
                let mut m = base.clone();
                m.classifier.config.emb_dim = 0;
                m
            },
            "an embedding width of 0",
        ),
        (
            {
                let mut m = base.clone();
                m.unet.sha256 = "é".repeat(32);
                m
            },
            "it must be 64 lower-case hex digits",
        ),
        (
            {
                let mut m = base.clone();
                m.classifier.file = "../../etc/passwd".into();
                m
            },
            "it must be a plain file name",
        ),
        (
            {
                let mut m = base.clone();
                m.schedule.steps = 4000;
                m
            },
            "trained with 4000 timesteps",
        ),
    ];
    for (m, want) in cases {
        let err = Manifest::parse(&m.to_json())
            .expect_err("rejected")
            .to_string();
        assert!(err.contains(want), "{err}");
    }
    // A file whose manifest hash is not hex still gets the "corrupt" sentence, not a panic.
    let mut m = base.clone();
    m.unet.sha256 = "é".repeat(32);
    let err = m.unet.verify(b"u").err().unwrap().to_string();
    assert!(err.contains("the manifest says éééé"), "{err}");
    assert!(Manifest::parse(&base.to_json()).is_ok());
}

/// int8 takes one scale per output channel, on the right axis: a linear layer ([in, out] in
/// burn) whose output columns differ a thousandfold in size comes back with each weight within
/// half a step of its own column's scale (its column's largest |w| / 127, computed here, not
/// read from the file). One scale for the whole tensor, or per input row (the wrong axis), puts
/// the small columns' error near the large column's step, hundreds of times over this bound.
#[test]
fn int8_scales_follow_each_output_channel_of_a_linear_layer() {
    use burn::nn::LinearConfig;
    use burn::tensor::TensorData;
    let device = Device::flex();
    let (inputs, outputs) = (5, 3);
    let w: Vec<f32> = (0..inputs * outputs)
        .map(|i| {
            let (row, col) = (i / outputs, i % outputs);
            (0.37 + 0.11 * row as f32 - 0.05 * (i % 4) as f32) * 10f32.powi(col as i32 * 3 / 2)
        })
        .collect();
    let mut linear = LinearConfig::new(inputs, outputs).init(&device);
    linear.weight = Param::from_tensor(Tensor::from_data(
        TensorData::new(w.clone(), [inputs, outputs]),
        &device,
    ));
    let bytes = store::to_safetensors(&linear, &[]).unwrap();
    let stored = store::read_safetensors(&bytes, "linear").unwrap();
    let (name, back) = stored
        .iter()
        .find(|(n, _)| n.ends_with("weight"))
        .expect("the weight is stored");
    assert_eq!(back.shape, vec![inputs, outputs], "{name}");
    for col in 0..outputs {
        let column: Vec<usize> = (0..inputs).map(|row| row * outputs + col).collect();
        let max = column.iter().fold(0f32, |m, &i| m.max(w[i].abs()));
        for &i in &column {
            let err = (w[i] - back.values[i]).abs();
            assert!(
                err <= max / 127.0 / 2.0 * 1.0001,
                "column {col} (max {max}): weight {i} off by {err}"
            );
        }
    }
}
