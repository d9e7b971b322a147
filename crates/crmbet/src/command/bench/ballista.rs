//! `crmbet bench etl --ballista`: the features of the run's warehouse computed again on a
//! standalone Ballista cluster, timed beside a single-process recompute of the same
//! warehouse, and compared with it field by field.

use std::path::Path;

use anyhow::bail;

/// How the two engines did on one warehouse.
#[derive(Debug)]
pub(super) struct EngineComparison {
    pub single_process_seconds: f64,
    pub ballista_seconds: f64,
    pub players: usize,
    /// The largest relative difference of a numeric field (counts and text must be equal).
    pub largest_difference: f64,
}

/// Fails before any work when this binary was built without Ballista.
pub(super) fn ensure_built_in() -> anyhow::Result<()> {
    if cfg!(feature = "ballista") {
        Ok(())
    } else {
        bail!(
            "this crmbet was built without Ballista; build it with \
             `cargo build --release -p crmbet --features ballista`"
        )
    }
}

/// Times both engines on the warehouse the bench's ETL run left under `scratch`.
#[cfg(feature = "ballista")]
pub(super) async fn compare_engines(scratch: &Path) -> anyhow::Result<EngineComparison> {
    use std::time::Instant;

    use crmbet_etl::{Warehouse, warehouse_features, warehouse_features_on_ballista};

    let warehouse = Warehouse::new(the_warehouse(&scratch.join("warehouse"))?);
    let started = Instant::now();
    let single = warehouse_features(&warehouse).await?;
    let single_process_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let distributed = warehouse_features_on_ballista(&warehouse).await?;
    let ballista_seconds = started.elapsed().as_secs_f64();
    let largest_difference = crmbet_etl::largest_feature_difference(&single, &distributed)
        .map_err(|difference| anyhow::anyhow!("Ballista's features differ: {difference}"))?;
    Ok(EngineComparison {
        single_process_seconds,
        ballista_seconds,
        players: single.len(),
        largest_difference,
    })
}

#[cfg(not(feature = "ballista"))]
pub(super) async fn compare_engines(_scratch: &Path) -> anyhow::Result<EngineComparison> {
    ensure_built_in()?;
    bail!("Ballista is not built in")
}

/// The one lake warehouse under `root` (the bench's ETL runs on one lake).
#[cfg(feature = "ballista")]
fn the_warehouse(root: &Path) -> anyhow::Result<std::path::PathBuf> {
    use anyhow::Context;

    let mut folders = Vec::new();
    for entry in std::fs::read_dir(root).with_context(|| format!("reading {}", root.display()))? {
        let path = entry?.path();
        if path.join("transactions").is_dir() {
            folders.push(path);
        }
    }
    match folders.as_slice() {
        [only] => Ok(only.clone()),
        _ => bail!(
            "expected one warehouse under {}, found {}",
            root.display(),
            folders.len()
        ),
    }
}
