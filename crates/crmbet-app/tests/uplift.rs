//! The campaign statistics agree with statsmodels (PyPI) to 1e-6 on the same counts.
//! `CRMBET_STATS_PYTHON` is the Python of the venv `scripts/test.sh` installs from
//! `tests/python/stats-requirements.txt`; this test does not skip without it.

// Test helpers unwrap on purpose: the panic with the error is the failure report.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crmbet_app::uplift::{Estimate, conversion_uplift, mean_difference};
use serde_json::{Value, json};

const TOLERANCE: f64 = 1e-6;

fn stats_python() -> String {
    std::env::var("CRMBET_STATS_PYTHON").unwrap_or_else(|_| {
        panic!(
            "CRMBET_STATS_PYTHON is not set: scripts/test.sh installs statsmodels \
             (tests/python/stats-requirements.txt) and sets it; this test does not skip"
        )
    })
}

fn reference(request: &Value) -> Value {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/uplift_reference.py");
    let mut child = Command::new(stats_python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the statsmodels reference");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the reference failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn assert_close(name: &str, ours: Estimate, theirs: &Value) {
    let theirs: Vec<f64> = theirs
        .as_array()
        .unwrap()
        .iter()
        .map(|value| value.as_f64().unwrap())
        .collect();
    let ours = [ours.difference, ours.ci_low, ours.ci_high, ours.p_value];
    for (field, (ours, theirs)) in ["difference", "ci_low", "ci_high", "p_value"]
        .iter()
        .zip(ours.iter().zip(&theirs))
    {
        assert!(
            (ours - theirs).abs() < TOLERANCE,
            "{name} {field}: ours {ours}, statsmodels {theirs}"
        );
    }
}

#[test]
fn uplift_interval_and_p_value_agree_with_statsmodels() {
    // (treatment converted, treatment players, control converted, control players)
    let cases: [(u64, u64, u64, u64); 7] = [
        (120, 1000, 80, 1000),
        (300, 9000, 25, 1000),
        (7, 50, 3, 50),
        (1500, 180_000, 150, 20_000),
        (0, 400, 3, 100),
        (45, 90, 50, 100),
        (999, 1000, 1, 2),
    ];
    let mut treatment_values = Vec::new();
    let mut control_values = Vec::new();
    for index in 0..2000u32 {
        let value =
            f64::from((index * 7919) % 113) * if index.is_multiple_of(5) { 1.0 } else { 0.0 };
        if index.is_multiple_of(9) {
            control_values.push(value * 0.8);
        } else {
            treatment_values.push(value);
        }
    }
    let request = json!({
        "proportions": cases.iter().map(|(a, b, c, d)| json!([a, b, c, d])).collect::<Vec<_>>(),
        "means": [treatment_values, control_values],
    });
    let answer = reference(&request);
    for (case, theirs) in cases.iter().zip(answer["proportions"].as_array().unwrap()) {
        let ours = conversion_uplift(case.0, case.1, case.2, case.3).unwrap();
        assert_close(&format!("{case:?}"), ours, theirs);
    }
    let ours = mean_difference(&treatment_values, &control_values).unwrap();
    assert_close("revenue per player", ours, &answer["means"]);
}
