//! QR images of URLs: SVG for the launch pages and the admin API, PNG for
//! printing. The `qrcode` crate does the encoding (modes, masks, error
//! correction); this module only draws its modules, with the quiet zone a
//! scanner needs around them.

use qrcode::{Color, EcLevel, QrCode};
use std::fmt::Write;

/// How to draw a code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QrStyle {
    /// The image's edge, in pixels, at least: modules are whole pixels, so
    /// the result may be larger (never smaller, unless one pixel a module
    /// does not fit).
    pub size: u32,
    /// The quiet zone, in modules, on every side (4 is the standard's).
    pub margin: u32,
    pub ec: EcLevel,
}

impl Default for QrStyle {
    fn default() -> Self {
        QrStyle {
            size: 256,
            margin: 4,
            ec: EcLevel::M,
        }
    }
}

/// The text does not fit in a QR code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the text is too long for a QR code at this error correction level")]
pub struct TooLong;

/// The modules of `text`: `width × width`, row by row, `true` = dark.
fn modules(text: &str, ec: EcLevel) -> Result<(usize, Vec<bool>), TooLong> {
    let code = QrCode::with_error_correction_level(text, ec).map_err(|_| TooLong)?;
    let width = code.width();
    let dark = code.to_colors().into_iter().map(|c| c == Color::Dark).collect();
    Ok((width, dark))
}

/// Pixels a module for `style`.
fn scale(width: usize, style: QrStyle) -> u32 {
    let modules = width as u32 + 2 * style.margin;
    (style.size / modules).max(1)
}

/// An `<svg>` element (no XML declaration, so it can be inlined in HTML):
/// one path, a run of dark modules per `h` segment.
pub fn svg(text: &str, style: QrStyle) -> Result<String, TooLong> {
    let (width, dark) = modules(text, style.ec)?;
    let total = width as u32 + 2 * style.margin;
    let pixels = total * scale(width, style);
    let mut out = String::with_capacity(width * width * 2 + 300);
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{pixels}" height="{pixels}" viewBox="0 0 {total} {total}" shape-rendering="crispEdges" role="img"><rect width="{total}" height="{total}" fill="#fff"/><path fill="#000" d=""##
    );
    for y in 0..width {
        let row = &dark[y * width..(y + 1) * width];
        let mut x = 0;
        while x < width {
            if !row[x] {
                x += 1;
                continue;
            }
            let start = x;
            while x < width && row[x] {
                x += 1;
            }
            let m = style.margin as usize;
            let _ = write!(out, "M{} {}h{}v1H{}z", start + m, y + m, x - start, start + m);
        }
    }
    out.push_str(r#""/></svg>"#);
    Ok(out)
}

/// A standalone SVG document (with its XML declaration).
pub fn svg_document(text: &str, style: QrStyle) -> Result<String, TooLong> {
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n",
        svg(text, style)?
    ))
}

/// An 8-bit grayscale PNG.
pub fn png(text: &str, style: QrStyle) -> Result<Vec<u8>, TooLong> {
    let (width, dark) = modules(text, style.ec)?;
    let scale = scale(width, style) as usize;
    let margin = style.margin as usize;
    let edge = (width + 2 * margin) * scale;
    let mut pixels = vec![255u8; edge * edge];
    for y in 0..width {
        for x in 0..width {
            if dark[y * width + x] {
                for dy in 0..scale {
                    let row = ((y + margin) * scale + dy) * edge;
                    let from = row + (x + margin) * scale;
                    pixels[from..from + scale].fill(0);
                }
            }
        }
    }
    let mut out = Vec::with_capacity(edge * edge / 8 + 1024);
    let mut encoder = png::Encoder::new(&mut out, edge as u32, edge as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::High);
    // Writing into a Vec cannot fail for an image whose sizes we chose.
    let written = encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&pixels));
    written.map_err(|_| TooLong)?;
    Ok(out)
}

/// An error-correction level by its letter (`L`, `M`, `Q`, `H`).
pub fn ec_level(letter: &str) -> Option<EcLevel> {
    match letter {
        "L" | "l" => Some(EcLevel::L),
        "M" | "m" => Some(EcLevel::M),
        "Q" | "q" => Some(EcLevel::Q),
        "H" | "h" => Some(EcLevel::H),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawings_have_the_quiet_zone_and_the_asked_size() {
        let style = QrStyle::default();
        let drawn = svg("https://go.example.com/spring24", style).unwrap();
        assert!(drawn.starts_with("<svg ") && drawn.ends_with("</svg>"));
        // Version 3 at level M is 29 modules, plus 2 × 4 of quiet zone.
        assert!(drawn.contains(r#"viewBox="0 0 37 37""#), "{drawn}");
        assert!(drawn.len() < 8 * 1024, "{} bytes", drawn.len());
        let png = png("https://go.example.com/spring24", style).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert!(svg("x".repeat(4000).as_str(), style).is_err());
    }
}
