//! The unit tests of `curve` (its private helpers).

use super::*;

fn row(step: usize, setting: &str) -> Row {
    Row {
        run: "checkpoints/run".into(),
        step,
        samples_seen: 64 * step,
        setting: setting.into(),
        n_per_class: 20,
        steps: 100,
        accuracy: 0.995,
        frechet: 0.3125,
        floor: 0.25,
        precision: 0.8,
        recall: 0.9,
        real_precision: 0.93,
        real_recall: 0.95,
        ink: 0.15,
        held_ink: 0.128,
        seconds: 400.0,
    }
}

#[test]
fn rows_survive_the_csv_and_a_bad_line_is_an_error() {
    let dir = std::env::temp_dir().join(format!("curve-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(CSV);
    // A run folder whose name holds a comma and a quote is one field.
    let mut odd = row(100, "none");
    odd.run = "runs/a,b \"c\"".into();
    let rows = vec![row(100, "both s=4 w=1"), row(100, "none"), odd];
    write_rows(&path, &rows).unwrap();
    assert_eq!(read_rows(&path).unwrap(), rows);
    // The committed table reads and is written back byte for byte.
    let committed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs")
        .join(CSV);
    write_rows(&path, &read_rows(&committed).unwrap()).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&committed).unwrap()
    );
    std::fs::write(&path, format!("{HEADER}\nnot,a,row\n")).unwrap();
    let err = read_rows(&path).unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");
    assert!(read_rows(&dir.join("missing.csv")).unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rows_name_the_default_by_its_setting() {
    let asked = settings(&["default".to_string(), "none".to_string()]).unwrap();
    assert_eq!(asked[0], (DEFAULT.label(), DEFAULT));
    assert_ne!(asked[0].0, "default");
    assert_eq!(asked[1].0, "none");
    assert!(settings(&["nonsense".to_string()]).is_err());
    // The default asked as "default" and by its label is one setting, judged once.
    let twice = settings(&["default".to_string(), DEFAULT.label(), "none".to_string()]);
    assert_eq!(twice.unwrap().len(), 2);
}

#[test]
fn the_curve_draws_the_default_unguided_and_settings_measured_twice() {
    let default = DEFAULT.label();
    let mut rows = vec![
        row(100, "both s=4 w=1"),
        row(200, "both s=4 w=1"),
        row(100, "none"),
        row(200, "none"),
        row(200, "both s=1 w=0"),
        row(300, &default),
    ];
    // The same setting twice at one step (N = 50 and 20) is one step, not two.
    let mut other_n = row(200, "both s=1 w=0");
    other_n.n_per_class = 50;
    rows.push(other_n);
    let mut other_run = row(300, "both s=1 w=0");
    other_run.run = "checkpoints".into();
    rows.push(other_run);
    let refs: Vec<&Row> = rows.iter().collect();
    let series = curve_settings(&refs, "checkpoints/run");
    let labels: Vec<&str> = series.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, [default.as_str(), "none", "both s=4 w=1"]);
    assert_eq!(series[0].1, plot::RED);
    // A default never measured (it changed after the run's rows) has no line, nor a key.
    let refs: Vec<&Row> = rows.iter().filter(|r| r.setting != default).collect();
    let series = curve_settings(&refs, "checkpoints/run");
    let labels: Vec<&str> = series.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["none", "both s=4 w=1"]);
}

#[test]
fn losses_average_over_whole_windows() {
    let l = [(25, 1.0), (50, 3.0), (75, 5.0), (100, 7.0), (125, 9.0)];
    assert_eq!(windowed(&l, 50), vec![(50, 2.0), (100, 6.0), (125, 9.0)]);
}

#[test]
fn the_section_replaces_its_old_self_and_keeps_the_rest() {
    let doc = format!("# Eval\n\ntable\n\n{START}\nold\n{END}\n\nafter\n");
    let new = format!("{START}\nnew\n{END}");
    let out = splice(&doc, &new);
    assert_eq!(out, format!("# Eval\n\ntable\n\n{new}\n\nafter\n"));
    assert_eq!(kept(&out), Some(new.as_str()));
    assert_eq!(splice("# Eval\n", &new), format!("# Eval\n\n{new}\n"));
    assert_eq!(kept("# Eval\n"), None);
}
