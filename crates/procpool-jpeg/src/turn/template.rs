//! The header and tables jpeg-encoder writes at a quality and subsampling,
//! made once per thread and copied into every turned file.

use std::cell::RefCell;
use std::rc::Rc;

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};

use super::super::coder::Code;
use super::super::scan::{Component, Frame};

/// What jpeg-encoder writes before the image data, at a quality and
/// subsampling: the header to copy and the tables to code with.
pub(super) struct Template {
    /// Every byte up to the image data.
    pub(super) header: Vec<u8>,
    /// Where the height and width (two bytes each) are in `header`.
    pub(super) size_at: usize,
    pub(super) components: Vec<Component>,
    /// Quantisation tables 0 to 3, zig-zag order.
    pub(super) quant: [[u16; 64]; 4],
    /// DC tables 0 to 3, then AC tables 0 to 3.
    pub(super) codes: Vec<Code>,
    /// Per component (in frame order), its DC and AC table numbers.
    pub(super) scan_tables: Vec<(usize, usize)>,
}

/// What identifies a [`Template`]: the quality and each component's
/// sampling factors.
pub(super) type TemplateKey = (u8, Vec<(u8, u8)>);

thread_local! {
    /// The templates made so far (a run uses one or two).
    static TEMPLATES: RefCell<Vec<(TemplateKey, Option<Rc<Template>>)>> =
        const { RefCell::new(Vec::new()) };
}

impl Template {
    /// [`Template::new`], made once per thread.
    pub(super) fn cached(frame: &Frame, quality: u8) -> Option<Rc<Template>> {
        let key = (
            quality,
            frame.components.iter().map(|c| (c.h, c.v)).collect(),
        );
        TEMPLATES.with_borrow_mut(|templates| {
            if let Some((_, template)) = templates.iter().find(|(k, _)| *k == key) {
                return template.clone();
            }
            let template = Template::new(frame, quality).map(Rc::new);
            if templates.len() >= 16 {
                templates.remove(0);
            }
            templates.push((key, template.clone()));
            template
        })
    }

    /// The template for turning `frame` at `quality` (its size left to
    /// patch in at `size_at`), or `None` where jpeg-encoder cannot write
    /// its subsampling.
    pub(super) fn new(frame: &Frame, quality: u8) -> Option<Template> {
        let mut jpeg = Vec::new();
        let mut encoder = Encoder::new(&mut jpeg, quality);
        match frame.components.as_slice() {
            [_] => encoder.encode(&[128; 64], 8, 8, ColorType::Luma).ok()?,
            [y, chroma @ ..] if chroma.iter().all(|c| (c.h, c.v) == (1, 1)) => {
                encoder.set_sampling_factor(SamplingFactor::from_factors(y.h, y.v)?);
                let (w, h) = (8 * u16::from(y.h), 8 * u16::from(y.v));
                let pixels = vec![128; usize::from(w) * usize::from(h) * 3];
                encoder.encode(&pixels, w, h, ColorType::Rgb).ok()?;
            }
            _ => return None,
        }
        let mut template = Template {
            header: Vec::new(),
            size_at: 0,
            components: Vec::new(),
            quant: [[1; 64]; 4],
            codes: (0..8).map(|_| Code::new(&[], &[])).collect(),
            scan_tables: Vec::new(),
        };
        let mut pos = 2;
        loop {
            let (&[0xFF, code], rest) = jpeg.get(pos..)?.split_first_chunk::<2>()? else {
                return None;
            };
            let length = usize::from(u16::from_be_bytes(*rest.first_chunk::<2>()?));
            let segment = rest.get(2..length)?;
            match code {
                0xDB => {
                    for table in segment.chunks(65) {
                        let id = usize::from(*table.first()? & 0x0F);
                        let values = table.get(1..65)?;
                        *template.quant.get_mut(id)? =
                            std::array::from_fn(|k| u16::from(values[k]));
                    }
                }
                0xC0 => {
                    let [8, _, _, _, _, count, ref rest @ ..] = *segment else {
                        return None;
                    };
                    template.components = rest
                        .chunks_exact(3)
                        .take(usize::from(count))
                        .map(|c| Component {
                            id: c[0],
                            h: c[1] >> 4,
                            v: c[1] & 0x0F,
                            tq: c[2] & 0x03,
                        })
                        .collect();
                    template.size_at = pos + 5;
                }
                0xC4 => {
                    let mut tables = segment;
                    while let [class_id, rest @ ..] = tables {
                        let counts = rest.get(..16)?;
                        let total = counts.iter().map(|&c| usize::from(c)).sum::<usize>();
                        let symbols = rest.get(16..16 + total)?;
                        let index = usize::from(class_id >> 4) * 4 + usize::from(class_id & 3);
                        *template.codes.get_mut(index)? = Code::new(counts, symbols);
                        tables = &rest[16 + total..];
                    }
                }
                0xDA => {
                    let count = usize::from(*segment.first()?);
                    for pair in segment.get(1..1 + 2 * count)?.chunks_exact(2) {
                        let index = template.components.iter().position(|c| c.id == pair[0])?;
                        if index != template.scan_tables.len() {
                            return None;
                        }
                        let (dc, ac) = (usize::from(pair[1] >> 4 & 3), usize::from(pair[1] & 3));
                        if !template.codes[dc].is_complete(true)
                            || !template.codes[4 + ac].is_complete(false)
                        {
                            return None;
                        }
                        template.scan_tables.push((dc, ac));
                    }
                    template.header = jpeg[..pos + 2 + length].to_vec();
                    break;
                }
                _ => {}
            }
            pos += 2 + length;
        }
        let same_layout = template.components.len() == frame.components.len()
            && template.scan_tables.len() == frame.components.len()
            && (frame.components.len() == 1
                || template
                    .components
                    .iter()
                    .zip(&frame.components)
                    .all(|(t, f)| (t.h, t.v) == (f.h, f.v)));
        same_layout.then_some(template)
    }
}
