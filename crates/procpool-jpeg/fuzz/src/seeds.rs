//! Writes a seed corpus for the fuzz targets into the directory given as the
//! first argument: small pictures of the crate's own samples in colour and
//! grey, at sizes that do and do not fill whole blocks, and its progressive
//! test file, and the inputs the targets once failed on. Nothing from
//! outside the project; small, so the fuzzer runs many inputs a second.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: seeds DIR")?);
    std::fs::create_dir_all(&dir)?;
    for (index, (width, height)) in [(16, 16), (33, 17), (64, 24), (8, 40)]
        .into_iter()
        .enumerate()
    {
        let picture = procpool_jpeg::samples::picture(index, width, height);
        let colour = procpool_jpeg::encode(picture.as_raw(), width, height, 3, 75)?;
        std::fs::write(dir.join(format!("colour-{width}x{height}.jpg")), colour)?;
        let grey: Vec<u8> = picture.as_raw().chunks(3).map(|p| p[1]).collect();
        let grey = procpool_jpeg::encode(&grey, width, height, 1, 90)?;
        std::fs::write(dir.join(format!("grey-{width}x{height}.jpg")), grey)?;
    }
    let progressive = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/progressive.jpg");
    std::fs::copy(progressive, dir.join("progressive.jpg"))?;
    // What the targets once failed on, so that a fix that comes undone shows.
    let found = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/fuzz");
    for entry in std::fs::read_dir(found)? {
        let path = entry?.path();
        std::fs::copy(&path, dir.join(path.file_name().ok_or("a file name")?))?;
    }
    Ok(())
}
