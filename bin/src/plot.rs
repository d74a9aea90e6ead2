//! Figures as PNG or SVG files, drawn with `plotters`: the tutorial's quarter
//! circle of sampled points, and speedup against the number of processes.
//!
//! Text uses DejaVu Sans, compiled in from the `dejavu` crate, so drawing
//! needs no system font library.
//!
//! ```
//! use procpool_cli::plot::{Target, quarter_circle};
//! let dir = tempfile::tempdir().unwrap();
//! let target = Target::new(dir.path().join("pi.svg"), (400, 400)).unwrap();
//! let points: Vec<_> = procpool_cli::pi::points(0).take(500).collect();
//! quarter_circle(&target, &points, "500 points").unwrap();
//! assert!(std::fs::read_to_string(target.path()).unwrap().contains("<svg"));
//! ```

use std::path::{Path, PathBuf};
use std::sync::Once;

use image::ImageEncoder as _;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::pi::{Point, Scaling};

/// The family every label is drawn in; registered once with DejaVu Sans.
pub(crate) const FONT: &str = "sans-serif";

/// The smallest and largest width or height accepted, in pixels.
pub const SIZES: std::ops::RangeInclusive<u32> = 200..=8192;

/// Why a figure cannot be drawn or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// The file name ends in neither `.png` nor `.svg`.
    #[error("plot file {path:?} must end in .png or .svg")]
    Format {
        /// The file asked for.
        path: PathBuf,
    },
    /// A width or height outside [`SIZES`].
    #[error("plot size {width}x{height} must be between {min} and {max} pixels each way", min = SIZES.start(), max = SIZES.end())]
    Size {
        /// Asked width.
        width: u32,
        /// Asked height.
        height: u32,
    },
    /// The file's folder does not exist.
    #[error("plot file {path:?}: folder {folder:?} does not exist")]
    Folder {
        /// The file asked for.
        path: PathBuf,
        /// Its folder.
        folder: PathBuf,
    },
    /// Drawing failed inside plotters.
    #[error("cannot draw {path:?}: {message}")]
    Draw {
        /// The file asked for.
        path: PathBuf,
        /// What plotters said.
        message: String,
    },
    /// The file could not be written.
    #[error("cannot write {path:?}: {source}")]
    Write {
        /// The file asked for.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// An image format, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A PNG bitmap.
    Png,
    /// An SVG drawing.
    Svg,
}

/// A checked place to draw a figure: file, format and size in pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    path: PathBuf,
    format: Format,
    size: (u32, u32),
}

impl Target {
    /// Checks the extension (`.png` or `.svg`, any case), the size and that
    /// the folder exists, so a long run does not end in a plot that cannot be
    /// saved.
    ///
    /// ```
    /// use procpool_cli::plot::{Format, Target};
    /// assert_eq!(Target::new("pi.PNG", (800, 600)).unwrap().format(), Format::Png);
    /// assert!(Target::new("pi.jpg", (800, 600)).is_err());
    /// assert!(Target::new("pi.svg", (10, 600)).is_err());
    /// assert!(Target::new("no/such/folder/pi.svg", (800, 600)).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// A [`PlotError`] naming the file and what is wrong with it.
    pub fn new(path: impl Into<PathBuf>, (width, height): (u32, u32)) -> Result<Target, PlotError> {
        let path = path.into();
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let format = match extension.as_deref() {
            Some("png") => Format::Png,
            Some("svg") => Format::Svg,
            _ => return Err(PlotError::Format { path }),
        };
        if !SIZES.contains(&width) || !SIZES.contains(&height) {
            return Err(PlotError::Size { width, height });
        }
        if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty())
            && !folder.is_dir()
        {
            let folder = folder.to_path_buf();
            return Err(PlotError::Folder { path, folder });
        }
        Ok(Target {
            path,
            format,
            size: (width, height),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format its extension names.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        self.size
    }
}

pub(crate) type DrawResult<DB> =
    Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Something that draws itself on any plotters backend.
pub(crate) trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

fn register_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // DejaVu Sans is a valid TrueType font: this cannot fail.
            let _ = plotters::style::register_font(FONT, style, dejavu::sans::regular());
        }
    });
}

/// Draws `figure` into memory, then writes the file in one go.
fn render(target: &Target, figure: &impl Figure) -> Result<(), PlotError> {
    let bytes = draw(&target.path, target.format, target.size, figure)?;
    // Whole or not at all: a figure interrupted while written leaves nothing.
    crate::write::atomically(&target.path, &bytes, true).map_err(|source| PlotError::Write {
        path: target.path.clone(),
        source,
    })
}

/// Draws `figure` in `format` at `size` into memory; `path` names it in errors.
pub(crate) fn draw(
    path: &Path,
    format: Format,
    size: (u32, u32),
    figure: &impl Figure,
) -> Result<Vec<u8>, PlotError> {
    let (width, height) = size;
    if !SIZES.contains(&width) || !SIZES.contains(&height) {
        return Err(PlotError::Size { width, height });
    }
    register_font();
    let draw_error = |e: &dyn std::fmt::Display| PlotError::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let bytes = match format {
        Format::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                figure.draw(&root).map_err(|e| draw_error(&e))?;
                root.present().map_err(|e| draw_error(&e))?;
            }
            svg.into_bytes()
        }
        Format::Png => {
            let mut rgb = vec![0u8; width as usize * height as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
                figure.draw(&root).map_err(|e| draw_error(&e))?;
                root.present().map_err(|e| draw_error(&e))?;
            }
            let mut png = Vec::new();
            use image::codecs::png::{CompressionType, FilterType, PngEncoder};
            PngEncoder::new_with_quality(&mut png, CompressionType::Best, FilterType::Adaptive)
                .write_image(&rgb, width, height, image::ExtendedColorType::Rgb8)
                .map_err(|e| draw_error(&e))?;
            png
        }
    };
    Ok(bytes)
}

/// A titled chart over `x` by `y` with labelled axes, text scaled to `root`.
fn chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<(Chart<'a, DB>, u32), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let text = (root.dim_in_pixel().0 / 40).clamp(12, 28);
    let chart = ChartBuilder::on(root)
        .caption(title, (FONT, text + 4))
        .margin(text)
        .x_label_area_size(text * 3)
        .y_label_area_size(text * 3)
        .build_cartesian_2d(x, y)?;
    Ok((chart, text))
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The legend box, at `position`.
fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    position: SeriesLabelPosition,
    text: u32,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, text))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
}

/// The tutorial's figure: the unit square with `points`, those inside the
/// quarter circle in one colour and those outside in another, and the arc.
///
/// # Errors
///
/// If drawing or writing the file fails.
pub fn quarter_circle(target: &Target, points: &[Point], title: &str) -> Result<(), PlotError> {
    render(target, &QuarterCircle { points, title })
}

struct QuarterCircle<'a> {
    points: &'a [Point],
    title: &'a str,
}

const INSIDE: RGBColor = RGBColor(31, 119, 180);
const OUTSIDE: RGBColor = RGBColor(255, 127, 14);

impl Figure for QuarterCircle<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (mut chart, text) = chart(root, self.title, 0.0..1.0, 0.0..1.0)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("x")
            .y_desc("y")
            .label_style((FONT, text))
            .draw()?;
        let radius = if self.points.len() > 5_000 { 1 } else { 2 };
        for (inside, colour, label) in [(true, INSIDE, "inside"), (false, OUTSIDE, "outside")] {
            let count = self.points.iter().filter(|p| p.inside == inside).count();
            chart
                .draw_series(
                    self.points
                        .iter()
                        .filter(|p| p.inside == inside)
                        .map(|p| Circle::new((p.x, p.y), radius, colour.filled())),
                )?
                .label(format!("{label} ({count})"))
                .legend(move |(x, y)| Circle::new((x, y), 5, colour.filled()));
        }
        let arc = (0..=256).map(|i| {
            let angle = f64::from(i) / 256.0 * std::f64::consts::FRAC_PI_2;
            (angle.cos(), angle.sin())
        });
        chart.draw_series(LineSeries::new(arc, BLACK.stroke_width(2)))?;
        legend(&mut chart, SeriesLabelPosition::UpperRight, text)
    }
}

/// Speedup against the number of processes, next to the ideal line
/// (speedup = processes), from a [`Scaling`] run.
///
/// # Errors
///
/// If drawing or writing the file fails.
pub fn speedup(target: &Target, scaling: &Scaling, title: &str) -> Result<(), PlotError> {
    render(target, &Speedup { scaling, title })
}

struct Speedup<'a> {
    scaling: &'a Scaling,
    title: &'a str,
}

impl Figure for Speedup<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let points = &self.scaling.points;
        let max_n = points.iter().map(|p| p.processes).max().unwrap_or(1).max(2) as f64;
        let max_speedup = points.iter().map(|p| p.speedup).fold(max_n, f64::max);
        let (x, y) = (0.5..max_n + 0.5, 0.0..max_speedup * 1.1);
        let (mut chart, text) = chart(root, self.title, x, y)?;
        chart
            .configure_mesh()
            .x_desc("worker processes")
            .y_desc("speedup over serial")
            .x_labels(max_n as usize + 1)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .label_style((FONT, text))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        let grey = RGBColor(120, 120, 120);
        chart
            .draw_series(DashedLineSeries::new(
                [(1.0, 1.0), (max_n, max_n)],
                10,
                6,
                grey.stroke_width(2),
            ))?
            .label("ideal")
            .legend(move |(x, y)| {
                PathElement::new([(x - 10, y), (x + 10, y)], grey.stroke_width(2))
            });
        let measured = || points.iter().map(|p| (p.processes as f64, p.speedup));
        chart.draw_series(measured().map(|xy| Circle::new(xy, 5, INSIDE.filled())))?;
        chart
            .draw_series(LineSeries::new(measured(), INSIDE.stroke_width(3)))?
            .label("measured (median)")
            .legend(|(x, y)| PathElement::new([(x - 10, y), (x + 10, y)], INSIDE.stroke_width(3)));
        legend(&mut chart, SeriesLabelPosition::UpperLeft, text)
    }
}
