//! Embeds the built dashboard (`web-client/dist/`, committed) into the server: generates a
//! table of `(path, include_bytes!(file))` in `OUT_DIR/dashboard_files.rs`, sorted by path.
//! Without a `dist/` folder (a crate built outside the repository) the table is empty and
//! the server answers 404 where the dashboard would be.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let dist = manifest_dir.join("../../web-client/dist");
    println!("cargo:rerun-if-changed={}", dist.display());

    let mut files = Vec::new();
    if dist.is_dir() {
        collect_files(&dist, &mut files)?;
    }
    files.sort();

    let mut table = String::from("&[\n");
    for file in &files {
        let relative = file.strip_prefix(&dist)?;
        let url_path: Vec<String> = relative
            .components()
            .map(|component| component.as_os_str().to_string_lossy().into_owned())
            .collect();
        let absolute = file.canonicalize()?;
        writeln!(
            table,
            "    ({:?}, include_bytes!({:?})),",
            format!("/{}", url_path.join("/")),
            absolute.display().to_string()
        )?;
    }
    table.push(']');

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("dashboard_files.rs"), table)?;
    Ok(())
}

fn collect_files(directory: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(directory)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}
