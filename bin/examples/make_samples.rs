//! Writes the ten sample JPEGs of `data/` (or of the folder given):
//! `cargo run --example make_samples [-- DIR]`. The pictures are drawn by
//! `procpool_cli::flip::samples`, deterministically, so a fresh clone can
//! check that `data/` is what this program makes (a test does).

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("data"), PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    for index in 0..procpool_cli::flip::samples::COUNT {
        let path = dir.join(procpool_cli::flip::samples::file_name(index));
        std::fs::write(&path, procpool_cli::flip::samples::jpeg(index))?;
        println!("{}", path.display());
    }
    Ok(())
}
