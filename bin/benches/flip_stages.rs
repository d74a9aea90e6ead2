//! Where the time of one flip goes, stage by stage, in one process:
//! `cargo bench --bench flip_stages [-- PHOTO...]` (default: the tutorial's
//! station photos in ../shared/data/stations, else data/). Prints the median
//! over the photos and 20 rounds of each stage, in milliseconds per image.
//! Add `--features turbojpeg` for the libjpeg-turbo build. "check image
//! data" is `inspect_jpeg`, which the default build runs before decoding;
//! the turbojpeg build checks the structure alone (libjpeg-turbo checks the
//! image data as it decodes), and "decode" includes that check. "turn in
//! DCT domain" is what `flip_bytes` does for a JPEG going to JPEG or PDF:
//! check, turn and encode in one. `FLIP_STAGES=turn,jpg` times only the
//! stages whose names hold one of those words (for `perf record`), and
//! `FLIP_ROUNDS` sets the rounds.

use std::path::PathBuf;
use std::time::Instant;

use procpool_cli::flip::{
    Format, decode, decode_planes, encode, flip_bytes, inspect_jpeg, rotate180, turn180,
    write_atomically,
};

fn main() {
    let only = std::env::var("FLIP_STAGES").unwrap_or_default();
    let mut photos: Vec<PathBuf> = std::env::args_os()
        .skip(1)
        .filter(|a| a != "--bench")
        .map(PathBuf::from)
        .collect();
    if photos.is_empty() {
        let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        // ../shared beside a clone, ../../shared beside a worktree of one.
        let dir = ["../shared/data/stations", "../../shared/data/stations"]
            .iter()
            .map(|d| root.join(d))
            .find(|d| d.is_dir())
            .unwrap_or_else(|| root.join("data"));
        photos = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
            .collect();
        photos.sort();
    }
    let out = tempfile::tempdir().unwrap();
    let rounds: usize = std::env::var("FLIP_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let wanted =
        |name: &str| only.is_empty() || only.split(',').any(|o| !o.is_empty() && name.contains(o));
    let mut stages: Vec<(String, Vec<f64>)> = Vec::new();
    let mut time = |name: &str, f: &mut dyn FnMut()| {
        if !wanted(name) {
            return;
        }
        let start = Instant::now();
        f();
        let ms = start.elapsed().as_secs_f64() * 1e3;
        match stages.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => v.push(ms),
            None => stages.push((name.to_string(), vec![ms])),
        }
    };
    for _ in 0..rounds {
        for photo in &photos {
            let mut data = std::fs::read(photo).unwrap();
            time("read", &mut || data = std::fs::read(photo).unwrap());
            time("check image data", &mut || {
                inspect_jpeg(&data, u64::MAX).unwrap();
            });
            // What a stage needs from one left out is made untimed.
            let mut image = None;
            time("decode", &mut || {
                image = Some(decode(&data, u64::MAX).unwrap())
            });
            let mut image = || {
                image
                    .take()
                    .unwrap_or_else(|| decode(&data, u64::MAX).unwrap())
            };
            if wanted("rotate 180") {
                let mut image = image();
                time("rotate 180", &mut || rotate180(&mut image));
            }
            let mut planes = None;
            time("decode planes", &mut || {
                planes = decode_planes(&data).unwrap();
            });
            time("turn in DCT domain", &mut || {
                turn180(&data, 75, u64::MAX)
                    .unwrap()
                    .expect("sequential JPEG");
            });
            if wanted("planes") {
                let mut planes = planes
                    .or_else(|| decode_planes(&data).unwrap())
                    .expect("the photos' size suits their subsampling");
                time("rotate planes", &mut || planes.rotate180());
                time("encode planes", &mut || {
                    planes.encode(75).unwrap();
                });
            }
            let image = if wanted("encode") || wanted("write") {
                Some(image())
            } else {
                None
            };
            for format in [Format::Jpg, Format::Pdf, Format::Png] {
                time(&format!("whole flip_bytes {format}"), &mut || {
                    flip_bytes(&data, format, 75, u64::MAX).unwrap();
                });
                let Some(image) = &image else { continue };
                let mut bytes = encode(image, format, 75).unwrap();
                time(&format!("encode {format}"), &mut || {
                    bytes = encode(image, format, 75).unwrap()
                });
                let path = out.path().join(format!("x.{format}"));
                time(&format!("write {format}"), &mut || {
                    write_atomically(&path, &bytes, true).unwrap()
                });
            }
        }
    }
    println!(
        "{} photos x {rounds} rounds; median ms per image:",
        photos.len()
    );
    for (name, mut ms) in stages {
        ms.sort_by(f64::total_cmp);
        println!("  {name:<22} {:7.3}", ms[ms.len() / 2]);
    }
}
