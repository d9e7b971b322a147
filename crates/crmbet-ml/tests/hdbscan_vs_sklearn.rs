//! Acceptance: our HDBSCAN agrees with scikit-learn's `HDBSCAN` on the same scaled matrix
//! and parameters (adjusted Rand index ≥ 0.9, noise counted as one more label as
//! scikit-learn's -1 is).
//!
//! Each case writes its matrix as `.npy` (float64), runs `tests/python/hdbscan_sklearn.py`
//! with the Python named by `CRMBET_PEER_PYTHON` (numpy and scikit-learn 1.9.1, see
//! `tests/python/peer-requirements.txt`), and compares. Without that variable the tests fail:
//! the comparison is the point, skipping it silently would hide a regression.
//!
//! Matrices: seeded Gaussian blobs of unequal sizes and densities with uniform background
//! noise, and `tests/data/peer_s7_scaled_3000x31.npy`: 3000 players drawn (numpy
//! `default_rng(7)`) from the 20 000 of the peer's lake `gen_lake.py --players 20000
//! --transactions 1000000 --seed 7 --dirty 0.01`, features from `peer.py --engine duckdb`,
//! transformed by the peer's `model_matrix` and standard-scaled over all 20 000 players,
//! stored as float32 to stay small (see `tests/data/README.md`).

// Test helpers unwrap on purpose: the panic with the error is the failure report.
#![allow(clippy::unwrap_used)]

use crmbet_ml::{adjusted_rand_index, hdbscan_labels};
use ndarray::Array2;
use rand_xoshiro::Xoshiro256PlusPlus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// Agreement the acceptance criterion asks for.
const MINIMUM_AGREEMENT: f64 = 0.9;

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The interpreter with scikit-learn; a clear failure when it is not configured.
fn peer_python() -> String {
    match std::env::var("CRMBET_PEER_PYTHON") {
        Ok(python) if !python.trim().is_empty() => python,
        _ => panic!(
            "CRMBET_PEER_PYTHON is not set: point it at a Python with numpy and scikit-learn \
             1.9.1 (pip install -r tests/python/peer-requirements.txt), e.g. \
             CRMBET_PEER_PYTHON=/root/.cache/crmbet/tools/peer-venv/bin/python; this test \
             compares our HDBSCAN with scikit-learn's and does not skip"
        ),
    }
}

/// Writes a float64 C-order `.npy` file (format version 1.0).
fn write_npy(path: &Path, matrix: &Array2<f64>) {
    let mut header = format!(
        "{{'descr': '<f8', 'fortran_order': False, 'shape': ({}, {}), }}",
        matrix.nrows(),
        matrix.ncols()
    );
    // Magic (6) + version (2) + length (2) + header, padded with spaces to 64 bytes, '\n'.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&u16::try_from(header.len()).unwrap().to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for value in matrix.as_standard_layout().iter() {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// Reads a little-endian float32 or float64 C-order 2-D `.npy` file (format 1.0).
fn read_npy(path: &Path) -> Array2<f64> {
    let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert_eq!(
        &bytes[..6],
        b"\x93NUMPY",
        "{} is not a .npy file",
        path.display()
    );
    let header_length = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let header = std::str::from_utf8(&bytes[10..10 + header_length]).unwrap();
    assert!(header.contains("'fortran_order': False"), "{header}");
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_text
        .split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| part.trim().parse().unwrap())
        .collect();
    assert_eq!(shape.len(), 2, "{header}");
    let data = &bytes[10 + header_length..];
    let values: Vec<f64> = if header.contains("'<f4'") {
        data.chunks_exact(4)
            .map(|chunk| f64::from(f32::from_le_bytes(chunk.try_into().unwrap())))
            .collect()
    } else {
        assert!(header.contains("'<f8'"), "{header}");
        data.chunks_exact(8)
            .map(|chunk| f64::from_le_bytes(chunk.try_into().unwrap()))
            .collect()
    };
    Array2::from_shape_vec((shape[0], shape[1]), values).unwrap()
}

/// scikit-learn's labels (-1 = noise) and the number of clusters it found.
fn scikit_learn_labels(matrix: &Array2<f64>, min_cluster_size: usize) -> Vec<i64> {
    let directory = tempfile::tempdir().unwrap();
    let matrix_path = directory.path().join("matrix.npy");
    write_npy(&matrix_path, matrix);
    let script = repository_root().join("tests/python/hdbscan_sklearn.py");
    let python = peer_python();
    let output = Command::new(&python)
        .arg(&script)
        .arg(&matrix_path)
        .arg("--min-cluster-size")
        .arg(min_cluster_size.to_string())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {python} {}: {error}", script.display()));
    assert!(
        output.status.success(),
        "{} failed ({}): {}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    report["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|label| label.as_i64().unwrap())
        .collect()
}

/// Runs both and returns a line describing the comparison, or panics below the bar.
fn assert_agreement(name: &str, matrix: &Array2<f64>, min_cluster_size: usize) {
    let started = Instant::now();
    let ours = hdbscan_labels(matrix.view(), min_cluster_size);
    let our_seconds = started.elapsed().as_secs_f64();
    let theirs = scikit_learn_labels(matrix, min_cluster_size);
    assert_eq!(ours.len(), theirs.len());
    let agreement = adjusted_rand_index(&ours, &theirs);
    let our_clusters = ours.iter().flatten().max().map_or(0, |largest| largest + 1);
    let our_noise = ours.iter().filter(|label| label.is_none()).count();
    let their_clusters = theirs
        .iter()
        .copied()
        .max()
        .map_or(0, |largest| largest + 1);
    let their_noise = theirs.iter().filter(|label| **label < 0).count();
    let line = format!(
        "{name} ({} x {}, min_cluster_size {min_cluster_size}): ARI {agreement:.4}; ours \
         {our_clusters} clusters, {our_noise} noise in {our_seconds:.2} s; scikit-learn \
         {their_clusters} clusters, {their_noise} noise",
        matrix.nrows(),
        matrix.ncols()
    );
    eprintln!("{line}");
    assert!(
        agreement >= MINIMUM_AGREEMENT,
        "{line}: below {MINIMUM_AGREEMENT}"
    );
}

/// A seeded source of uniform and standard normal numbers.
struct Random(Xoshiro256PlusPlus);

impl Random {
    fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let radius = (-2.0 * (1.0 - self.uniform()).ln()).sqrt();
        radius * (2.0 * std::f64::consts::PI * self.uniform()).cos()
    }
}

/// Gaussian blobs (sizes and spreads per blob) around random centres in a cube, then
/// `background` uniform points over a wider cube, in `dimensions` columns.
fn blobs(seed: u64, dimensions: usize, blobs: &[(usize, f64)], background: usize) -> Array2<f64> {
    let mut random = Random(Xoshiro256PlusPlus::seed_from_u64(seed));
    let total = blobs.iter().map(|(size, _)| size).sum::<usize>() + background;
    let mut matrix = Array2::zeros((total, dimensions));
    let mut row = 0;
    for &(size, spread) in blobs {
        let centre: Vec<f64> = (0..dimensions)
            .map(|_| 20.0 * random.uniform() - 10.0)
            .collect();
        for _ in 0..size {
            for (column, middle) in centre.iter().enumerate() {
                matrix[[row, column]] = middle + spread * random.normal();
            }
            row += 1;
        }
    }
    for _ in 0..background {
        for column in 0..dimensions {
            matrix[[row, column]] = 30.0 * random.uniform() - 15.0;
        }
        row += 1;
    }
    matrix
}

#[test]
fn agrees_with_scikit_learn_on_blobs_of_unequal_density_with_noise() {
    let matrix = blobs(7, 2, &[(400, 0.4), (250, 1.0), (150, 1.6), (80, 0.3)], 120);
    assert_agreement("2-d blobs, seed 7", &matrix, 25);
    let matrix = blobs(
        11,
        5,
        &[(600, 0.5), (300, 1.2), (200, 2.0), (100, 0.8)],
        200,
    );
    assert_agreement("5-d blobs, seed 11", &matrix, 15);
    assert_agreement("5-d blobs, seed 11", &matrix, 50);
}

#[test]
fn agrees_with_scikit_learn_on_scaled_player_features() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/peer_s7_scaled_3000x31.npy");
    let matrix = read_npy(&path);
    assert_eq!(matrix.dim(), (3000, 31));
    // The peer's choice for a density sample of this size is max(25, n / 200) = 25.
    assert_agreement("peer players, seed 7", &matrix, 25);
    assert_agreement("peer players, seed 7", &matrix, 60);
}
