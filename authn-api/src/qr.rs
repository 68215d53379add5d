//! QR code images of short values (pairing keys, sign-in URIs), as data URIs a page can
//! put straight into `<img src>`: SVG (crisp, small) and PNG (for every client).

use std::io::Cursor;

use assent_proto::authn::QrImages;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use image::{ImageFormat, Luma};
use qrcode::QrCode;

/// Encodes `value`; `None` only if it is too long for a QR code (never for our values).
pub fn images(value: &str) -> Option<QrImages> {
    let code = QrCode::new(value.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .build();
    let png = code.render::<Luma<u8>>().min_dimensions(200, 200).build();
    let mut bytes = Cursor::new(Vec::new());
    png.write_to(&mut bytes, ImageFormat::Png).ok()?;
    Some(QrImages {
        svg: format!("data:image/svg+xml;base64,{}", STANDARD.encode(svg)),
        png: format!(
            "data:image/png;base64,{}",
            STANDARD.encode(bytes.into_inner())
        ),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn images_are_data_uris_of_real_images() {
        let images = super::images("ABCDEFGHIJ0123456789").unwrap();
        let png = images.png.strip_prefix("data:image/png;base64,").unwrap();
        let bytes =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(images.svg.starts_with("data:image/svg+xml;base64,"));
    }
}
