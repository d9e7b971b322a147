#![allow(clippy::unwrap_used, missing_docs)]
use crmbet_ml::*;
use std::collections::HashMap;

fn read(path: &str) -> FeatureTable {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let id = header.iter().position(|c| *c == "user_id").unwrap();
    let mut ids = Vec::new();
    let mut rows = Vec::new();
    let mut keep = Vec::new();
    let mut names = Vec::new();
    let first: Vec<String> = Vec::new();
    let _ = first;
    let mut data: Vec<Vec<&str>> = Vec::new();
    for line in lines {
        data.push(line.split(',').collect());
    }
    for (i, c) in header.iter().enumerate() {
        if i == id {
            continue;
        }
        let numeric = data
            .iter()
            .take(100)
            .all(|r| r[i].is_empty() || r[i].parse::<f64>().is_ok());
        if numeric {
            keep.push(i);
            names.push(c.to_string());
        }
    }
    for r in &data {
        ids.push(r[id].to_string());
        for i in &keep {
            rows.push(r[*i].parse::<f64>().unwrap_or(f64::NAN));
        }
    }
    let values = ndarray::Array2::from_shape_vec((ids.len(), keep.len()), rows).unwrap();
    FeatureTable {
        player_ids: ids,
        columns: names,
        values,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let table = read(&args[1]);
    let truth_text = std::fs::read_to_string(&args[2]).unwrap();
    let truth_map: HashMap<String, String> = truth_text
        .lines()
        .skip(1)
        .map(|l| {
            let mut p = l.split(',');
            (p.next().unwrap().to_string(), p.next().unwrap().to_string())
        })
        .collect();
    let truth: Vec<String> = table
        .player_ids
        .iter()
        .map(|id| truth_map.get(id).cloned().unwrap_or_default())
        .collect();
    let seed: u64 = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(0);
    let runs: usize = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(0);
    let subsample: usize = args.get(5).map(|s| s.parse().unwrap()).unwrap_or(10000);
    let boot_init: usize = args.get(6).map(|s| s.parse().unwrap()).unwrap_or(3);
    let started = std::time::Instant::now();
    let (names, matrix) = explore::prepare(&table);
    eprintln!(
        "prepare {:.2}s, {} features",
        started.elapsed().as_secs_f64(),
        names.len()
    );
    let ks: Vec<usize> = (2..=12).collect();
    let started = std::time::Instant::now();
    let (entries, sil_seconds, sample) =
        explore::sweep(matrix.view(), &ks, 10, seed, runs, subsample, boot_init);
    eprintln!(
        "sweep {:.2}s (silhouettes {:.2}s)",
        started.elapsed().as_secs_f64(),
        sil_seconds
    );
    let codes: Vec<Option<usize>> = {
        let mut m: HashMap<String, usize> = HashMap::new();
        truth
            .iter()
            .map(|t| {
                let n = m.len();
                Some(*m.entry(t.clone()).or_insert(n))
            })
            .collect()
    };
    let truth_sil = explore::silhouette_of(matrix.view(), &sample, &codes);
    println!("truth silhouette {truth_sil:.4}");
    for e in &entries {
        if (6..=8).contains(&e.k) {
            let mut names: Vec<String> = truth_map.values().cloned().collect();
            names.sort();
            names.dedup();
            for n in &names {
                let mut row = vec![0usize; e.k];
                for (l, t) in e.labels.iter().zip(&truth) {
                    if t == n {
                        row[*l] += 1;
                    }
                }
                println!("  {:20} {:?}", n, row);
            }
        }
        println!(
            "k={:2} sil={:.4} stab={:.4} ari={:.4} inertia={:.0} fit={:.2}s stab={:.2}s",
            e.k,
            e.silhouette,
            e.stability,
            adjusted_rand_index(&e.labels, &truth),
            e.inertia,
            e.fit_seconds,
            e.stability_seconds
        );
    }
}
