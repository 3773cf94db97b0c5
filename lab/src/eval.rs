//! `guided-ddpm-lab eval`'s run: loads the weights, judges the real digits once, then samples
//! and judges each setting not yet in `eval.json`, writing the report after each.

use burn::module::Module;
use burn::tensor::Device;

use guided_ddpm::grid;
use guided_ddpm::guidance::Guidance;
use guided_ddpm::nn::{ClassifierConfig, NUM_CLASSES};
use guided_ddpm::settings::Method;
use guided_ddpm::weights;
use guided_ddpm::Error;

use crate::judge::{
    self, classifier_by_quartile, first_per_class, judge_digits, run_setting, RealDigits,
};
use crate::kept::{
    run_name, settings, slug, EvalOptions, Report, RANDOM_DRAWS, RANDOM_SEED, SAMPLES_DIR,
};
use crate::report::write_report;
use crate::{frechet, realism};

/// Runs (or continues) the evaluation and writes `eval.json`, `EVAL.md` and the grids in `out`.
/// How a row's samples leave the sampler: as drawn, centred by mass (`--centre`, a lever), or
/// placed as the demo places a run from noise (`--place`).
#[derive(Clone, Copy, PartialEq)]
enum Finish {
    AsDrawn,
    Centred,
    Placed,
}

pub fn run(opts: &EvalOptions) -> Result<Report, Error> {
    opts.validate()?;
    let json_path = opts.out.join("eval.json");
    if opts.report_only {
        let manifest = weights::read_manifest(&opts.weights)?;
        let text = std::fs::read_to_string(&json_path)
            .map_err(Error::io(format!("reading {}", json_path.display())))?;
        let report: Report = serde_json::from_str(&text)
            .map_err(|e| Error::Data(format!("{} is corrupt: {e}", json_path.display())))?;
        write_report(&report, &manifest, opts)?;
        return Ok(report);
    }
    let device = Device::flex();
    let ad = device.clone().autodiff();
    let (manifest, unet, classifier) = weights::load_dir(&opts.weights, &device)?;
    let classifier = classifier.to_device(&ad).freeze();
    let judge_net = guided_ddpm::train::load_ema(
        ClassifierConfig::new().init(&device),
        &opts.checkpoints,
        "judge",
    )?;
    let (train_set, held) = guided_ddpm::data::load(&opts.data)?.split();
    std::fs::create_dir_all(&opts.out)
        .map_err(Error::io(format!("creating {}", opts.out.display())))?;
    let mut report: Report = std::fs::read_to_string(&json_path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .filter(|r: &Report| r.unet_sha256 == manifest.unet.sha256)
        .unwrap_or_default();
    report.unet_sha256 = manifest.unet.sha256.clone();
    if report.classifier_sha256 != manifest.classifier.sha256 {
        if !report.classifier_sha256.is_empty() {
            report
                .settings
                .retain(|r| !r.guidance.mode.uses_classifier());
        }
        report.classifier_sha256 = manifest.classifier.sha256.clone();
    }

    let real = RealDigits::judge(&judge_net, &train_set, &held, opts.n_per_class, &device);
    report.judge_held_out_accuracy = real.held_accuracy;
    // Every train digit judged once: the unguided floor draws from all of them, the 1,000-digit
    // floor takes the first 100 of each class.
    let all_train: Vec<usize> = (0..train_set.len()).collect();
    let (_, all_feats) = judge_digits(&judge_net, &train_set, &all_train, &device);
    let d = judge_net.feature_dim();
    let train_feats: Vec<f32> = first_per_class(&train_set, 100)
        .iter()
        .flat_map(|&i| all_feats[i * d..(i + 1) * d].iter().copied())
        .collect();
    report.real_vs_real_frechet = frechet::between(&train_feats, &real.held_feats, d);
    report.real_vs_real_same_n_frechet = real.same_n_frechet;
    report.real_vs_real_random_frechet = frechet::random_subsets(
        &all_feats,
        &real.held_feats,
        d,
        NUM_CLASSES * opts.n_per_class,
        RANDOM_DRAWS,
        RANDOM_SEED,
    );
    report.real_vs_real_same_n_draws = frechet::stratified_subsets(
        &all_feats,
        &train_set.labels,
        &real.held_feats,
        d,
        opts.n_per_class,
        RANDOM_DRAWS,
        RANDOM_SEED,
    );
    report.real_vs_real_precision_recall = [real.precision, real.recall];
    report.held_out_ink = real.held_ink;
    report.real_vs_real_ink = real.same_n_ink;
    report.train_ink = real.train_ink;
    report.classifier_accuracy_by_t_quartile =
        classifier_by_quartile(&classifier, &held, manifest.schedule.kind, &ad);
    let (realism, reference) = realism::Realism::prepare(
        &opts.checkpoints,
        &train_set,
        &held,
        opts.n_per_class,
        report.realism_reference.as_ref(),
        (RANDOM_DRAWS, RANDOM_SEED),
        &device,
    )?;
    let (ts, ts_sd) = reference.two_sample_mean_sd();
    eprintln!(
        "real vs real: two-sample test {:.1}% (sd {:.1} over draws), autoencoder FD {:.3}, copy threshold {:.3}",
        100.0 * ts,
        100.0 * ts_sd,
        reference.ae_frechet_mean_sd().0,
        reference.copy_threshold
    );
    report.realism_reference = Some(reference);
    eprintln!(
        "judge {:.2}% on held-out; classifier by t-quartile {:?}; real-vs-real FD {:.3}",
        100.0 * real.held_accuracy,
        report.classifier_accuracy_by_t_quartile,
        report.real_vs_real_frechet
    );

    // The table follows this order, the float check last.
    let order = settings();
    let mut todo: Vec<(String, Guidance, bool)> = order.clone();
    if let Some((label, g)) = &opts.float_check {
        todo.push((format!("{label} (float)"), *g, true));
    }
    // A label no list names is read as a setting of its own ("both s=1 w=0 t=500-999").
    for label in &opts.only {
        if !todo.iter().any(|(l, _, _)| l == label) {
            todo.push((label.clone(), Guidance::from_label(label)?, false));
        }
    }
    todo.retain(|(label, _, _)| opts.only.is_empty() || opts.only.contains(label));
    // Autoguidance: each setting at each w, the float rows left out.
    let guide = match &opts.autoguide {
        Some(dir) => Some(guided_ddpm::train::load_unet_ema(dir, &device)?),
        None => None,
    };
    let guide_by = match &opts.autoguide {
        Some(dir) => {
            let config = guided_ddpm::train::unet_config_of(dir)?;
            let state = guided_ddpm::train::read_state(
                &guided_ddpm::train::CheckpointFiles::new(dir, "unet").state,
            )?;
            format!(
                "{}: channels {:?}, embedding {}, float EMA at step {}",
                dir.display(),
                config.channels,
                config.emb_dim,
                state.step
            )
        }
        None => String::new(),
    };
    let todo: Vec<(String, Guidance, bool, Option<f64>)> = match &guide {
        None => todo.into_iter().map(|(l, g, f)| (l, g, f, None)).collect(),
        Some(_) => todo
            .into_iter()
            .filter(|(_, _, float)| !float)
            .flat_map(|(l, g, f)| {
                opts.autoguide_w
                    .iter()
                    .map(move |&w| (format!("{l} ag={w}"), g, f, Some(w)))
            })
            .collect(),
    };
    // Centring and placing: each setting as drawn, then centred, then placed (the float rows as
    // drawn only).
    let todo: Vec<(String, Guidance, bool, Option<f64>, Finish)> = todo
        .into_iter()
        .flat_map(|(l, g, f, w)| {
            let centred =
                (opts.centre && !f).then(|| (format!("{l} centred"), g, f, w, Finish::Centred));
            let placed =
                (opts.place && !f).then(|| (format!("{l} placed"), g, f, w, Finish::Placed));
            std::iter::once((l, g, f, w, Finish::AsDrawn))
                .chain(centred)
                .chain(placed)
        })
        .collect();
    let runs: Vec<(Method, usize)> = opts
        .method
        .iter()
        .flat_map(|&m| opts.steps.iter().map(move |&n| (m, n)))
        .collect();
    let todo = todo
        .into_iter()
        .flat_map(|t| runs.iter().map(move |&run| (t.clone(), run)));
    for ((label, guidance, float, ag_w, finish), (method, steps)) in todo {
        if report.settings.iter().any(|r| {
            r.is_run(&label, method, steps)
                && r.guidance == guidance
                && r.n_per_class >= opts.n_per_class
                && r.has_fidelity()
                && r.realism.is_some()
        }) {
            continue;
        }
        let name = run_name(&label, method, steps);
        let float_unet;
        let (u, c, weights_name) = if float {
            float_unet = guided_ddpm::train::load_ema(
                manifest.unet.config.init(&device),
                &opts.checkpoints,
                "unet",
            )?;
            let c = guided_ddpm::train::load_ema(
                manifest.classifier.config.init(&ad),
                &opts.checkpoints,
                "classifier",
            )?
            .freeze();
            (&float_unet, c, "float EMA checkpoint")
        } else {
            (&unet, classifier.clone(), "int8")
        };
        let (mut result, rows, samples) = run_setting(
            &label,
            guidance,
            (method, steps),
            u,
            &c,
            &judge_net,
            &real.held_feats,
            opts,
            weights_name,
            manifest.schedule.kind,
            judge::Extras {
                autoguide: guide.as_ref().zip(ag_w),
                centre: finish == Finish::Centred,
                place: finish == Finish::Placed,
            },
            &device,
        )?;
        let measured = realism.measure(&samples.bytes, &samples.classes, &device);
        eprintln!(
            "{name}: two-sample test {:.1}% (fold sd {:.1}), autoencoder FD {:.3}, copy share {:.1}%, black {:.1}%",
            100.0 * measured.two_sample.accuracy(),
            100.0 * measured.two_sample.fold_sd(),
            measured.ae_frechet,
            100.0 * measured.copying.share,
            100.0 * measured.black
        );
        result.realism = Some(measured);
        result.autoguide = ag_w;
        if ag_w.is_some() {
            result.autoguide_by = guide_by.clone();
        }
        result.centred = finish == Finish::Centred;
        result.placed = finish == Finish::Placed;
        let (w, h, px) = grid::layout(&rows, 10);
        let samples = opts.out.join(SAMPLES_DIR);
        std::fs::create_dir_all(&samples).map_err(guided_ddpm::Error::io(format!(
            "creating {}",
            samples.display()
        )))?;
        grid::write_png(
            &samples.join(format!("samples-{}.png", slug(&name))),
            w,
            h,
            &px,
            2,
        )?;
        eprintln!(
            "{name}: judged accuracy {:.1}%, FD {:.3}",
            100.0 * result.accuracy,
            result.frechet
        );
        report.settings.retain(|r| !r.is_run(&label, method, steps));
        report.settings.push(result);
        report.settings.sort_by_key(|r| {
            let at = order.iter().position(|(l, _, _)| *l == r.label);
            (at.unwrap_or(order.len()), r.method.name(), r.steps)
        });
        write_report(&report, &manifest, opts)?;
    }
    write_report(&report, &manifest, opts)?;
    Ok(report)
}
