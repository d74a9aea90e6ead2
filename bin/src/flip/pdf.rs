//! A one-page PDF holding one JPEG image at its size (one pixel per point,
//! as Pillow writes it at its default 72 dpi), written with `pdf-writer`.

use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref, TextStr};

/// A PDF whose single page is `width` x `height` points and shows the JPEG
/// `stream` (grey or RGB) filling the page, embedded as is (DCTDecode).
///
/// ```
/// # let jpeg = procpool_cli::flip::samples::jpeg(0);
/// let pdf = procpool_cli::flip::one_page_pdf(&jpeg, 640, 360, false);
/// assert!(pdf.starts_with(b"%PDF-1.7"));
/// ```
pub fn one_page(stream: &[u8], width: u32, height: u32, grey: bool) -> Vec<u8> {
    let catalog = Ref::new(1);
    let pages = Ref::new(2);
    let page = Ref::new(3);
    let image = Ref::new(4);
    let content = Ref::new(5);
    let info = Ref::new(6);
    let name = Name(b"Im0");
    let (w, h) = (width as f32, height as f32);

    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(pages);
    pdf.pages(pages).kids([page]).count(1);
    let mut p = pdf.page(page);
    p.parent(pages)
        .media_box(Rect::new(0.0, 0.0, w, h))
        .contents(content);
    p.resources().x_objects().pair(name, image);
    p.finish();

    let mut xobject = pdf.image_xobject(image, stream);
    xobject.filter(Filter::DctDecode);
    xobject.width(width as i32).height(height as i32);
    if grey {
        xobject.color_space().device_gray();
    } else {
        xobject.color_space().device_rgb();
    }
    xobject.bits_per_component(8);
    xobject.finish();

    // An image occupies the unit square: scale it to the page.
    let mut draw = Content::new();
    draw.save_state();
    draw.transform([w, 0.0, 0.0, h, 0.0, 0.0]);
    draw.x_object(name);
    draw.restore_state();
    pdf.stream(content, &draw.finish());

    pdf.document_info(info)
        .producer(TextStr(concat!("procpool ", env!("CARGO_PKG_VERSION"))));
    pdf.finish()
}
