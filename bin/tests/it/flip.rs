//! `procpool flip`: orientation pixel by pixel, every format read back, bad
//! inputs, no overwriting, colliding outputs, progress bar and JSON, all
//! through the real binary on images made in temporary folders.

use std::path::{Path, PathBuf};
use std::process::Output;

use image::{GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use procpool_cli::flip::{Format, output_path, samples};

use crate::util::{procpool, run, show};

/// Smooth and asymmetric: JPEG keeps it within a few levels, and no pixel
/// matches its opposite by chance.
fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            (x * 255 / (width - 1)) as u8,
            (y * 255 / (height - 1)) as u8,
            ((x + 2 * y) * 255 / (width + 2 * height)) as u8,
        ])
    })
}

fn save_png(image: &RgbImage, path: &Path) {
    image.save(path).unwrap();
}

/// Runs `procpool -p 2 flip ARGS...`.
fn flip(args: &[&str]) -> Output {
    let mut all = vec!["-p", "2", "flip"];
    all.extend_from_slice(args);
    run(&all)
}

/// Whether a program can be started (tests that need it skip otherwise).
fn installed(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Flips `input` into `out_dir` as `format` at JPEG quality 95; returns
/// the output's path.
fn flip_at_quality_95(input: &Path, format: &str, out_dir: &Path) -> PathBuf {
    let args = [
        "--format",
        format,
        "--quality",
        "95",
        "--out",
        s(out_dir),
        s(input),
    ];
    let out = flip(&args);
    assert!(out.status.success(), "{format}: {}", show(&out));
    output_path(input, format.parse().unwrap(), Some(out_dir))
}

/// The JPEG stream of a one-page PDF, after checking the page's structure:
/// one page of the image's size, drawing one DCTDecode image XObject.
fn pdf_jpeg_stream(path: &Path, width: u32, height: u32) -> Vec<u8> {
    use lopdf::{Document, Object};
    let doc = Document::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let pages = doc.get_pages();
    assert_eq!(pages.len(), 1, "{}: one page", path.display());
    let page_id = pages[&1];
    let page = doc.get_dictionary(page_id).unwrap();
    let media_box: Vec<f32> = page
        .get(b"MediaBox")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_float().unwrap())
        .collect();
    assert_eq!(media_box, [0.0, 0.0, width as f32, height as f32]);
    let content = String::from_utf8(doc.get_page_content(page_id)).unwrap();
    assert!(
        content.contains(&format!("{width} 0 0 {height} 0 0 cm")) && content.contains("/Im0 Do"),
        "{content}"
    );
    let resources = doc
        .get_dictionary(page_id)
        .unwrap()
        .get(b"Resources")
        .unwrap();
    let xobjects = resources.as_dict().unwrap().get(b"XObject").unwrap();
    let image_ref = xobjects.as_dict().unwrap().get(b"Im0").unwrap();
    let Object::Stream(stream) = doc.get_object(image_ref.as_reference().unwrap()).unwrap() else {
        panic!("Im0 is not a stream")
    };
    assert_eq!(
        stream.dict.get(b"Filter").unwrap().as_name().unwrap(),
        b"DCTDecode"
    );
    assert_eq!(
        stream.dict.get(b"Width").unwrap().as_i64().unwrap(),
        i64::from(width)
    );
    assert_eq!(
        stream.dict.get(b"Height").unwrap().as_i64().unwrap(),
        i64::from(height)
    );
    stream.content.clone()
}

/// An output read back as RGB by a decoder other than the one that wrote it.
fn read_back(path: &Path, width: u32, height: u32) -> RgbImage {
    if path.extension().unwrap() == "pdf" {
        let jpeg = pdf_jpeg_stream(path, width, height);
        return image::load_from_memory(&jpeg).unwrap().to_rgb8();
    }
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

/// The largest difference on any channel between output pixel (x, y) and
/// input pixel (w-1-x, h-1-y), and where it is.
fn rotation_error(input: &RgbImage, output: &RgbImage) -> (u8, u32, u32) {
    let (w, h) = input.dimensions();
    let mut worst = (0u8, 0, 0);
    for (x, y, out) in output.enumerate_pixels() {
        let expected = input.get_pixel(w - 1 - x, h - 1 - y);
        for c in 0..3 {
            let d = out[c].abs_diff(expected[c]);
            if d > worst.0 {
                worst = (d, x, y);
            }
        }
    }
    worst
}

/// Every output pixel (x, y) is within `tolerance` of input pixel
/// (w-1-x, h-1-y), on every channel.
fn assert_rotated(input: &RgbImage, output: &RgbImage, tolerance: u8, what: &str) {
    assert_eq!(output.dimensions(), input.dimensions(), "{what}: size");
    let (worst, x, y) = rotation_error(input, output);
    assert!(
        worst <= tolerance,
        "{what}: pixel ({x}, {y}) is {worst} levels off its opposite (tolerance {tolerance})"
    );
}

#[test]
fn every_format_is_the_input_turned_180_degrees_pixel_by_pixel() {
    let dir = tempfile::tempdir().unwrap();
    // Neither side a multiple of JPEG's 16-pixel blocks.
    let input = gradient(61, 37);
    let path = dir.path().join("grad.png");
    save_png(&input, &path);
    // The test can fail: the picture is far from its own rotation.
    assert!(rotation_error(&input, &input).0 > 200);

    for (format, tolerance) in [
        ("png", 0),
        ("webp", 0),
        ("tiff", 0),
        ("bmp", 0),
        ("jpg", 12),
        ("pdf", 12),
    ] {
        let written = flip_at_quality_95(&path, format, &dir.path().join(format));
        assert!(written.ends_with(format!("grad_flipped.{format}")));
        let output = read_back(&written, 61, 37);
        assert_rotated(&input, &output, tolerance, format);
    }
}

#[test]
fn jpeg_inputs_of_every_subsampling_are_turned_pixel_by_pixel() {
    use image::DynamicImage;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: Vec<u8>| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let jpeg_444 = |img: &RgbImage| {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 95)
            .encode_image(img)
            .unwrap();
        out
    };
    // The library's own encoder (jpeg-encoder, or libjpeg-turbo with the
    // `turbojpeg` feature): 4:2:0, or grey.
    let jpeg_420 = |img: DynamicImage| procpool_cli::flip::encode(&img, Format::Jpg, 95).unwrap();
    let inputs = [
        // Rotated in YCbCr planes: 4:4:4 at any size, 4:2:0 at even sizes
        // (at any size in the default build), grey.
        write("s444_odd.jpg", jpeg_444(&gradient(61, 37))),
        write("s420_even.jpg", jpeg_420(gradient(64, 48).into())),
        write(
            "grey_odd.jpg",
            jpeg_420(DynamicImage::ImageRgb8(gradient(61, 37)).grayscale()),
        ),
        // Through RGB pixels with libjpeg-turbo: 4:2:0 at an odd size.
        write("s420_odd.jpg", jpeg_420(gradient(61, 37).into())),
    ];
    for input in &inputs {
        // As the `image` crate decodes it: with libjpeg-turbo our decoder
        // differs, so allow for its other inverse DCT and chroma upsampling.
        let decoded = image::open(input).unwrap().to_rgb8();
        let (w, h) = decoded.dimensions();
        for format in ["png", "jpg", "pdf"] {
            let written = flip_at_quality_95(input, format, &dir.path().join(format));
            let output = read_back(&written, w, h);
            let what = format!("{} -> {format}", input.display());
            assert_rotated(&decoded, &output, 10, &what);
        }
    }
}

#[test]
fn grey_and_transparent_images_keep_their_channels() {
    let dir = tempfile::tempdir().unwrap();
    let grey = GrayImage::from_fn(20, 10, |x, y| Luma([(x * 12 + y) as u8]));
    let rgba = RgbaImage::from_fn(20, 10, |x, y| {
        Rgba([x as u8 * 10, y as u8 * 20, 50, x as u8])
    });
    grey.save(dir.path().join("grey.png")).unwrap();
    rgba.save(dir.path().join("alpha.png")).unwrap();
    let out = flip(&["--format", "png", s(dir.path())]);
    assert!(out.status.success(), "{}", show(&out));
    let grey_out = image::open(dir.path().join("grey_flipped.png")).unwrap();
    let rgba_out = image::open(dir.path().join("alpha_flipped.png")).unwrap();
    assert_eq!(
        grey_out.as_luma8().unwrap().get_pixel(0, 0),
        grey.get_pixel(19, 9)
    );
    assert_eq!(
        rgba_out.as_rgba8().unwrap().get_pixel(2, 3),
        rgba.get_pixel(17, 6)
    );

    // A grey PDF holds a grey JPEG.
    let out = flip(&[
        "--out",
        s(&dir.path().join("pdf")),
        s(&dir.path().join("grey.png")),
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let jpeg = pdf_jpeg_stream(&dir.path().join("pdf/grey_flipped.pdf"), 20, 10);
    assert_eq!(
        image::load_from_memory(&jpeg).unwrap().color(),
        image::ColorType::L8
    );
}

#[test]
fn the_pdf_renders_with_pdftoppm_when_it_is_installed() {
    if !installed("pdftoppm") {
        eprintln!("pdftoppm is not installed (apt-get install poppler-utils): skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = gradient(64, 48);
    save_png(&input, &dir.path().join("g.png"));
    let out = flip(&["--quality", "95", s(&dir.path().join("g.png"))]);
    assert!(out.status.success(), "{}", show(&out));
    let rendered = std::process::Command::new("pdftoppm")
        .args(["-r", "72", "-png", "-singlefile"])
        .arg(dir.path().join("g_flipped.pdf"))
        .arg(dir.path().join("render"))
        .output()
        .unwrap();
    assert!(rendered.status.success(), "{}", show(&rendered));
    let page = image::open(dir.path().join("render.png"))
        .unwrap()
        .to_rgb8();
    assert_rotated(&input, &page, 16, "pdftoppm");
}

#[test]
fn flip_data_works_on_the_committed_samples_which_the_generator_reproduces() {
    let data = crate::util::root().join("data");
    let dir = tempfile::tempdir().unwrap();
    for i in 0..samples::COUNT {
        let name = samples::file_name(i);
        let committed = std::fs::read(data.join(&name)).unwrap();
        assert!(
            committed == samples::jpeg(i),
            "data/{name} differs from what `cargo run --example make_samples` makes"
        );
        std::fs::write(dir.path().join(&name), committed).unwrap();
    }
    let pattern = format!("{}/*.jpg", s(dir.path()));
    let out = flip(&[&pattern]);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("flipped 10 of 10 images to PDF"),
        "{stdout}"
    );
    for i in 0..samples::COUNT {
        let pdf = dir
            .path()
            .join(samples::file_name(i).replace(".jpg", "_flipped.pdf"));
        pdf_jpeg_stream(&pdf, samples::WIDTH, samples::HEIGHT);
    }
}

/// Bad inputs of every kind beside two good ones, in one folder.
struct BadInputs {
    dir: tempfile::TempDir,
    good: Vec<PathBuf>,
    /// Each bad input and a piece of its expected message.
    bad: Vec<(PathBuf, &'static str)>,
}

fn bad_inputs() -> BadInputs {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let good = vec![p("a_good.jpg"), p("z_good.jpg")];
    std::fs::write(&good[0], samples::jpeg(0)).unwrap();
    std::fs::write(&good[1], samples::jpeg(1)).unwrap();

    let whole = samples::jpeg(2);
    assert!(whole.len() > 50_000);
    std::fs::write(p("cut.jpg"), &whole[..9_000]).unwrap();
    let mut corrupt = whole.clone();
    corrupt[2..40].fill(0x55);
    std::fs::write(p("corrupt.jpg"), &corrupt).unwrap();
    // Zeros where image data was: the scan ends early.
    let mut scrambled = whole.clone();
    scrambled[20_000..23_000].fill(0);
    std::fs::write(p("scrambled.jpg"), &scrambled).unwrap();
    std::fs::write(p("empty.jpg"), b"").unwrap();
    std::fs::write(p("notes.jpg"), b"hello, this is not a picture\n").unwrap();
    std::fs::create_dir(p("folder.jpg")).unwrap();
    // A real JPEG whose frame header claims 60000 x 60000 pixels.
    let mut bomb = whole.clone();
    let sof = bomb.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    bomb[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
    std::fs::write(p("bomb.jpg"), &bomb).unwrap();

    let bad = vec![
        (
            p("bomb.jpg"),
            "60000x60000 = 3600000000 pixels, over the decoding limit of 178956970",
        ),
        (
            p("corrupt.jpg"),
            "corrupt JPEG: expected a marker at byte 2",
        ),
        (
            p("cut.jpg"),
            "truncated JPEG: the file ends after 9000 bytes",
        ),
        (p("empty.jpg"), "empty file (0 bytes)"),
        (p("folder.jpg"), "is a directory"),
        (p("notes.jpg"), "not an image: the data is text"),
        (
            p("scrambled.jpg"),
            "corrupt JPEG: premature end of data segment",
        ),
        (p("missing.jpg"), "no such file"),
    ];
    BadInputs { dir, good, bad }
}

#[test]
fn each_bad_input_gets_one_line_naming_it_and_the_rest_are_flipped() {
    let inputs = bad_inputs();
    let pattern = format!("{}/*.jpg", s(inputs.dir.path()));
    let missing = inputs.dir.path().join("missing.jpg");
    let out = flip(&["--format", "jpg", &pattern, s(&missing)]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = text(&out.stderr);
    for (path, cause) in &inputs.bad {
        let prefix = format!("procpool: {}: ", path.display());
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&prefix)).collect();
        assert_eq!(lines.len(), 1, "one line for {}:\n{stderr}", path.display());
        assert!(
            lines[0].contains(cause),
            "{} should say {cause:?}:\n{stderr}",
            path.display()
        );
        let output = output_path(path, Format::Jpg, None);
        assert!(!output.exists(), "{} was written", output.display());
    }
    for path in &inputs.good {
        let output = output_path(path, Format::Jpg, None);
        let flipped = image::open(&output).unwrap();
        assert_eq!((flipped.width(), flipped.height()), (640, 360));
    }
    let summary = stderr.lines().last().unwrap();
    assert!(
        summary.starts_with("procpool: 8 of 10 failed: "),
        "{stderr}"
    );
    for (path, _) in &inputs.bad {
        assert!(summary.contains(s(path)), "{summary}");
    }
    assert!(
        text(&out.stdout).contains("flipped 2 of 10 images"),
        "{}",
        show(&out)
    );
    // No temporary file is left anywhere.
    let leftovers: Vec<_> = std::fs::read_dir(inputs.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_pixel_limit_is_adjustable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jpg");
    std::fs::write(&path, samples::jpeg(0)).unwrap();
    let out = flip(&["--max-pixels", "230399", s(&path)]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("640x360 = 230400 pixels, over the decoding limit of 230399"),
        "{}",
        show(&out)
    );
    let out = flip(&["--max-pixels", "230400", s(&path)]);
    assert!(out.status.success(), "{}", show(&out));

    // Other formats too, from the header before decoding.
    let png = dir.path().join("b.png");
    save_png(&gradient(100, 100), &png);
    let out = flip(&["--max-pixels", "9999", s(&png)]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("100x100 = 10000 pixels, over the decoding limit of 9999"),
        "{}",
        show(&out)
    );
}

#[test]
fn file_names_that_are_not_utf8_travel_to_the_workers_intact() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join(OsStr::from_bytes(b"caf\xe9.jpg"));
    std::fs::write(&input, samples::jpeg(0)).unwrap();
    let out = procpool()
        .args(["-p", "2", "flip"])
        .arg(&input)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let output = dir.path().join(OsStr::from_bytes(b"caf\xe9_flipped.pdf"));
    pdf_jpeg_stream(&output, 640, 360);
}

#[test]
fn inputs_are_never_modified() {
    let inputs = bad_inputs();
    let before: Vec<Vec<u8>> = inputs
        .good
        .iter()
        .chain(inputs.bad.iter().map(|(p, _)| p))
        .map(|p| std::fs::read(p).unwrap_or_default())
        .collect();
    for format in ["pdf", "png"] {
        flip(&["--format", format, "--force", s(inputs.dir.path())]);
    }
    let after: Vec<Vec<u8>> = inputs
        .good
        .iter()
        .chain(inputs.bad.iter().map(|(p, _)| p))
        .map(|p| std::fs::read(p).unwrap_or_default())
        .collect();
    assert!(before == after);
}

#[test]
fn an_existing_output_is_kept_without_force_and_replaced_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.jpg"), dir.path().join("b.jpg"));
    std::fs::write(&a, samples::jpeg(0)).unwrap();
    std::fs::write(&b, samples::jpeg(1)).unwrap();
    let existing = dir.path().join("a_flipped.pdf");
    std::fs::write(&existing, b"precious").unwrap();

    let out = flip(&[s(&a), s(&b)]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "procpool: {}: output {} already exists (use --force to overwrite)",
            a.display(),
            existing.display()
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&existing).unwrap(), b"precious");
    assert!(dir.path().join("b_flipped.pdf").exists());

    let out = flip(&["--force", s(&a), s(&b)]);
    assert!(out.status.success(), "{}", show(&out));
    pdf_jpeg_stream(&existing, 640, 360);
}

#[test]
fn colliding_outputs_stop_the_run_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    std::fs::create_dir(p("one")).unwrap();
    std::fs::create_dir(p("two")).unwrap();
    for name in ["one/x.jpg", "two/x.jpg", "one/y.jpg", "one/y.png"] {
        std::fs::write(p(name), samples::jpeg(0)).unwrap();
    }
    // Same stem, same folder.
    let out = flip(&[s(&p("one/y.jpg")), s(&p("one/y.png")), s(&p("one/x.jpg"))]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{} and {} would both write {}",
            p("one/y.jpg").display(),
            p("one/y.png").display(),
            p("one/y_flipped.pdf").display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was flipped"), "{stderr}");
    assert!(!p("one/x_flipped.pdf").exists(), "work started");

    // Same name from two folders into one --out folder.
    let out_dir = p("out");
    let out = flip(&["--out", s(&out_dir), s(&p("one/x.jpg")), s(&p("two/x.jpg"))]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("would both write"),
        "{}",
        show(&out)
    );
    assert!(!out_dir.exists(), "the output folder was made for nothing");

    // An output that is another input.
    std::fs::write(p("two/x_flipped.jpg"), samples::jpeg(1)).unwrap();
    let out = flip(&[
        "--format",
        "jpg",
        s(&p("two/x.jpg")),
        s(&p("two/x_flipped.jpg")),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(
        text(&out.stderr).contains("which is also an input"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_pattern_matching_nothing_is_reported_and_the_rest_flipped() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.jpg");
    std::fs::write(&a, samples::jpeg(0)).unwrap();
    let pattern = format!("{}/*.png", s(dir.path()));
    let out = flip(&[&pattern, s(&a)]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        text(&out.stderr).contains(&format!(
            "procpool: {pattern}: no file matches this pattern"
        )),
        "{}",
        show(&out)
    );
    assert!(dir.path().join("a_flipped.pdf").exists());
}

#[test]
fn json_gives_one_object_per_image_and_a_summary_and_no_progress_bar() {
    let inputs = bad_inputs();
    let out = flip(&["--json", "--format", "png", s(inputs.dir.path())]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    // Errors on stderr as well, one line each; no progress bar.
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 7, "{stderr}");
    assert!(
        stderr.lines().all(|l| l.starts_with("procpool: ")),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "{stderr:?}"
    );
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The folder gives its eight regular .jpg files; the subfolder is skipped.
    let (results, summary) = lines.split_at(lines.len() - 1);
    assert_eq!(results.len(), 8, "{lines:#?}");
    let ok: Vec<_> = results
        .iter()
        .filter(|l| l.get("output").is_some())
        .collect();
    assert_eq!(ok.len(), 2);
    for line in &ok {
        assert_eq!(line["output"]["width"], 640);
        assert!(
            line["output"]["path"]
                .as_str()
                .unwrap()
                .ends_with("_flipped.png")
        );
    }
    let failed = results
        .iter()
        .find(|l| l["input"].as_str().unwrap().ends_with("cut.jpg"));
    assert!(
        failed.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("truncated JPEG")
    );
    assert_eq!(summary[0]["summary"]["failed"], 6);
    assert_eq!(summary[0]["summary"]["exit_code"], 1);
}

#[test]
fn no_progress_bar_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..6 {
        std::fs::write(dir.path().join(samples::file_name(i)), samples::jpeg(i)).unwrap();
    }
    // No bar, no carriage returns or escape sequences (tests/it/terminal.rs
    // shows it on a terminal).
    let out = flip(&["--format", "bmp", s(dir.path())]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(out.stderr.is_empty(), "{}", show(&out));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["flip"][..],
        &["flip", "--format", "gif", "a.jpg"],
        &["flip", "--quality", "0", "a.jpg"],
        &["flip", "--max-pixels", "0", "a.jpg"],
    ] {
        let out = procpool()
            .args(args)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", show(&out));
    }
}
