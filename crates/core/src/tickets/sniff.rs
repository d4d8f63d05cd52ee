//! Deciding what an uploaded file is, from its bytes, and refusing what is not safe to keep and
//! hand to the team.
//!
//! Threat: an upload is a stranger's file that a colleague will open. It may be an executable
//! or a script under an innocent name, HTML or SVG that runs script when opened from our
//! origin, an office document carrying macros or an executable, or a polyglot: a file valid as
//! two types at once (a PNG with a zip appended, a PDF that is also HTML).
//!
//! Invariants (each refusal names its reason and the accepted types):
//! - the type comes from the content (magic bytes, `infer`), never from the client's
//!   `Content-Type`; the file name's extension must agree with it;
//! - only the safe set [`SAFE_TYPES`] (narrowed by `PALISADE_UPLOAD_ALLOWED_TYPES`) is kept:
//!   PNG, JPEG, GIF, WebP, PDF, plain text, CSV, DOCX, XLSX, PPTX, DOC, XLS;
//! - executables (PE, ELF, Mach-O), scripts (a `#!` line), HTML, SVG and XML are refused
//!   whatever their extension, and so is markup near the start or end of any file;
//! - a zip is accepted only as an OOXML document holding only its expected parts (XML,
//!   relationships, media whose own bytes are not executable; no macros, no embedded objects);
//!   a legacy (CFB) document only without a VBA project;
//! - images and PDFs carry nothing after their end marker and no zip directory (polyglots); a
//!   PDF carries no JavaScript, launch action or embedded file;
//! - text and CSV are UTF-8 without NUL bytes.

use std::io::Read;

/// The types an upload may be, with the extensions each may carry (the first is canonical).
pub const SAFE_TYPES: &[(&str, &[&str])] = &[
    ("image/png", &["png"]),
    ("image/jpeg", &["jpg", "jpeg", "jpe"]),
    ("image/gif", &["gif"]),
    ("image/webp", &["webp"]),
    ("application/pdf", &["pdf"]),
    ("text/plain", &["txt", "text", "log"]),
    ("text/csv", &["csv"]),
    (DOCX, &["docx"]),
    (XLSX, &["xlsx"]),
    (PPTX, &["pptx"]),
    ("application/msword", &["doc"]),
    ("application/vnd.ms-excel", &["xls"]),
];

const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";

/// Whether `mime` is one of [`SAFE_TYPES`].
pub fn is_safe_type(mime: &str) -> bool {
    SAFE_TYPES.iter().any(|(m, _)| *m == mime)
}

/// Why a file was refused: a sentence for the person who uploaded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

fn refuse<T>(reason: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(reason.into()))
}

/// Decides the type of `bytes` named with extension `ext` (lower case, no dot), accepting only
/// the types in `allowed` (a subset of [`SAFE_TYPES`]). Returns the MIME type.
pub fn sniff(bytes: &[u8], ext: Option<&str>, allowed: &[String]) -> Result<&'static str, Refusal> {
    let mime = match content_type(bytes)? {
        "text/plain" if ext == Some("csv") => "text/csv",
        m => m,
    };
    if !allowed.iter().any(|a| a == mime) {
        return refuse(format!("{mime} files are not accepted here"));
    }
    let exts = SAFE_TYPES
        .iter()
        .find(|(m, _)| *m == mime)
        .map_or(&[][..], |(_, e)| *e);
    match ext {
        Some(e) if exts.contains(&e) => Ok(mime),
        Some(e) => refuse(format!(
            "the content is {mime} but the file name ends in .{e} (expected .{})",
            exts.join(" or .")
        )),
        None => refuse(format!(
            "the file name has no extension; for this content it must end in .{}",
            exts.join(" or .")
        )),
    }
}

fn content_type(bytes: &[u8]) -> Result<&'static str, Refusal> {
    if bytes.is_empty() {
        return refuse("the file is empty");
    }
    if let Some(what) = executable(bytes) {
        return refuse(format!("{what} are not accepted"));
    }
    // A zip's head holds its first entry's name and (compressed) bytes: an OOXML document's
    // parts are XML, checked by `office` instead.
    let zip = bytes.starts_with(b"PK\x03\x04");
    if let Some(tag) = markup(head(bytes)).filter(|_| !zip) {
        return refuse(format!(
            "the file starts with markup ({tag}): HTML, SVG and XML files are not accepted"
        ));
    }
    if let Some(tag) = markup(tail(bytes)) {
        return refuse(format!(
            "the file ends with markup ({tag}): a file that is also HTML is not accepted"
        ));
    }
    let Some(kind) = infer::get(bytes) else {
        return text(bytes);
    };
    let mime = kind.mime_type();
    match mime {
        "image/png" => {
            no_zip_inside(bytes, "PNG image")?;
            if !bytes.ends_with(b"IEND\xAE\x42\x60\x82") {
                return refuse("the PNG image has data after its end (a polyglot file)");
            }
            Ok("image/png")
        }
        "image/jpeg" => {
            no_zip_inside(bytes, "JPEG image")?;
            if !trim_end_zeros(bytes).ends_with(&[0xFF, 0xD9]) {
                return refuse("the JPEG image has data after its end (a polyglot file)");
            }
            Ok("image/jpeg")
        }
        "image/gif" => {
            no_zip_inside(bytes, "GIF image")?;
            if !bytes.ends_with(b";") {
                return refuse("the GIF image has data after its end (a polyglot file)");
            }
            Ok("image/gif")
        }
        "image/webp" => {
            no_zip_inside(bytes, "WebP image")?;
            // RIFF's length field covers the whole file.
            let declared = bytes
                .get(4..8)
                .and_then(|l| <[u8; 4]>::try_from(l).ok())
                .map(|l| u32::from_le_bytes(l) as usize);
            if declared.map(|d| d.saturating_add(8)) != Some(bytes.len()) {
                return refuse("the WebP image's length does not match the file (a polyglot file)");
            }
            Ok("image/webp")
        }
        "application/pdf" => pdf(bytes),
        "application/msword" | "application/vnd.ms-excel" => {
            if contains_utf16(bytes, "_VBA_PROJECT") || contains_utf16(bytes, "Macros") {
                return refuse("the document contains macros");
            }
            Ok(if mime == "application/msword" {
                "application/msword"
            } else {
                "application/vnd.ms-excel"
            })
        }
        _ if bytes.starts_with(b"PK\x03\x04") => office(bytes),
        other => refuse(format!("{other} files are not accepted")),
    }
}

/// What kind of program `bytes` is, if one: PE, ELF, Mach-O (thin or fat), a script with a
/// `#!` line, or what `infer` classes as an application or archive.
fn executable(bytes: &[u8]) -> Option<&'static str> {
    let b = strip_bom(bytes);
    if b.starts_with(b"MZ") {
        return Some("Windows executables (PE)");
    }
    if b.starts_with(b"\x7FELF") {
        return Some("Linux executables (ELF)");
    }
    const MACHO: [[u8; 4]; 5] = [
        [0xFE, 0xED, 0xFA, 0xCE],
        [0xFE, 0xED, 0xFA, 0xCF],
        [0xCE, 0xFA, 0xED, 0xFE],
        [0xCF, 0xFA, 0xED, 0xFE],
        [0xCA, 0xFE, 0xBA, 0xBE],
    ];
    if MACHO.iter().any(|m| b.starts_with(m)) {
        return Some("macOS executables (Mach-O)");
    }
    if b.starts_with(b"#!") {
        return Some("scripts (a #! line)");
    }
    match infer::get(bytes).map(|k| k.matcher_type()) {
        Some(infer::MatcherType::App) => Some("programs and libraries"),
        _ => None,
    }
}

fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)
}

fn head(b: &[u8]) -> &[u8] {
    b.get(..b.len().min(1024)).unwrap_or(b)
}

fn tail(b: &[u8]) -> &[u8] {
    b.get(b.len().saturating_sub(1024)..).unwrap_or(b)
}

fn trim_end_zeros(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|c| *c != 0).map_or(0, |i| i + 1);
    b.get(..end).unwrap_or(b)
}

/// The first markup tag a browser would take for HTML, SVG or XML in `b`, if any.
fn markup(b: &[u8]) -> Option<&'static str> {
    const TAGS: [&str; 11] = [
        "<!doctype",
        "<html",
        "<head",
        "<body",
        "<script",
        "<iframe",
        "<svg",
        "<?xml",
        "<object",
        "<embed",
        "<meta",
    ];
    let lower: Vec<u8> = b.iter().map(u8::to_ascii_lowercase).collect();
    TAGS.into_iter()
        .find(|t| lower.windows(t.len()).any(|w| w == t.as_bytes()))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn contains_utf16(hay: &[u8], needle: &str) -> bool {
    let n: Vec<u8> = needle.encode_utf16().flat_map(u16::to_le_bytes).collect();
    contains(hay, &n)
}

/// A zip's end-of-central-directory record lies within the last 64 KiB + 22 bytes: one there
/// makes the file a zip too.
fn no_zip_inside(b: &[u8], what: &str) -> Result<(), Refusal> {
    let window = b.get(b.len().saturating_sub(65_557)..).unwrap_or(b);
    if contains(window, b"PK\x05\x06") || contains(b, b"PK\x03\x04\x14\x00") {
        return refuse(format!(
            "the {what} also carries a zip archive (a polyglot file)"
        ));
    }
    Ok(())
}

fn pdf(b: &[u8]) -> Result<&'static str, Refusal> {
    no_zip_inside(b, "PDF")?;
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace() && *c != 0)
        .map_or(0, |i| i + 1);
    if !b.get(..end).unwrap_or(b).ends_with(b"%%EOF") {
        return refuse("the PDF has data after its end (a polyglot file)");
    }
    for (name, what) in [
        (&b"/JavaScript"[..], "JavaScript"),
        (b"/JS", "JavaScript"),
        (b"/Launch", "a launch action"),
        (b"/EmbeddedFile", "an embedded file"),
        (b"/RichMedia", "rich media"),
    ] {
        if contains(b, name) {
            return refuse(format!("the PDF contains {what}"));
        }
    }
    Ok("application/pdf")
}

/// Text: UTF-8 (a BOM allowed), no NUL; `text/plain`, or `text/csv` for a `.csv` name (the
/// caller's extension check decides between them: see [`sniff`]).
fn text(b: &[u8]) -> Result<&'static str, Refusal> {
    if b.contains(&0) {
        return refuse(
            "the file is not text (it contains NUL bytes) and its type is not one we accept",
        );
    }
    if std::str::from_utf8(strip_bom(b)).is_err() {
        return refuse("the file is neither a type we recognise nor UTF-8 text");
    }
    Ok("text/plain")
}

/// The parts an OOXML document may hold: XML and relationships, pictures, fonts, printer
/// settings. Anything else (macros `vbaProject.bin`, embedded objects, programs) is refused.
fn office(b: &[u8]) -> Result<&'static str, Refusal> {
    const PART_EXTS: [&str; 13] = [
        "xml", "rels", "png", "jpeg", "jpg", "gif", "emf", "wmf", "bmp", "tif", "tiff", "odttf",
        "fntdata",
    ];
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(b))
        .map_err(|_| Refusal("the file is a damaged zip archive".into()))?;
    if zip.len() > 5000 {
        return refuse("the archive has too many entries");
    }
    let names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|_| Refusal("the archive has an entry name that cannot be read".into()))?;
    for name in &names {
        if name.ends_with('/') {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if lower.contains("..") || lower.starts_with('/') || lower.contains('\\') {
            return refuse(format!(
                "the archive has an entry with a path outside it ({name:?})"
            ));
        }
        if lower.contains("vbaproject") {
            return refuse("the document contains macros");
        }
        if lower.contains("/embeddings/") || lower.contains("activex") {
            return refuse(format!(
                "the document contains an embedded object ({name:?})"
            ));
        }
        let ext = lower.rsplit_once('.').map_or("", |(_, e)| e);
        let printer = lower.contains("/printersettings/") && ext == "bin";
        if !(PART_EXTS.contains(&ext) || printer || lower == "[content_types].xml") {
            return refuse(format!(
                "the archive holds {name:?}, which is not part of an office document"
            ));
        }
    }
    // Each part's own bytes: a program or script under a picture's name is refused.
    for i in 0..zip.len() {
        let mut f = zip
            .by_index(i)
            .map_err(|_| Refusal("the archive has an entry that cannot be read".into()))?;
        if f.is_dir() {
            continue;
        }
        if f.encrypted() {
            return refuse("the archive has an encrypted entry");
        }
        let name = f.name().map(|n| n.into_owned()).unwrap_or_default();
        let mut start = Vec::with_capacity(16);
        (&mut f)
            .take(16)
            .read_to_end(&mut start)
            .map_err(|_| Refusal(format!("the archive's entry {name:?} cannot be read")))?;
        if let Some(what) = executable(&start) {
            return refuse(format!("the archive's entry {name:?} is one of {what}"));
        }
    }
    let has = |p: &str| names.iter().any(|n| n == p);
    if !has("[Content_Types].xml") {
        return refuse("zip archives are not accepted (only Word, Excel and PowerPoint documents)");
    }
    match (
        has("word/document.xml"),
        has("xl/workbook.xml"),
        has("ppt/presentation.xml"),
    ) {
        (true, false, false) => Ok(DOCX),
        (false, true, false) => Ok(XLSX),
        (false, false, true) => Ok(PPTX),
        _ => refuse("zip archives are not accepted (only Word, Excel and PowerPoint documents)"),
    }
}

/// The accepted types as a person reads them: `image/png (.png), …`.
pub fn describe(allowed: &[String]) -> String {
    allowed
        .iter()
        .filter_map(|m| SAFE_TYPES.iter().find(|(t, _)| t == m))
        .map(|(m, e)| format!("{m} (.{})", e.join(", .")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn all() -> Vec<String> {
        SAFE_TYPES.iter().map(|(m, _)| (*m).to_owned()).collect()
    }

    pub(crate) fn png() -> Vec<u8> {
        let mut b =
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89"
                .to_vec();
        b.extend_from_slice(b"\0\0\0\0IEND\xAE\x42\x60\x82");
        b
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn docx(extra: &[(&str, &[u8])]) -> Vec<u8> {
        let mut e: Vec<(&str, &[u8])> = vec![
            ("[Content_Types].xml", b"<?xml version=\"1.0\"?><Types/>"),
            ("_rels/.rels", b"<?xml version=\"1.0\"?><Relationships/>"),
            ("word/document.xml", b"<?xml version=\"1.0\"?><w:document/>"),
        ];
        e.extend_from_slice(extra);
        zip_of(&e)
    }

    fn ok(bytes: &[u8], ext: &str) -> &'static str {
        sniff(bytes, Some(ext), &all()).unwrap_or_else(|r| panic!("{ext}: {}", r.0))
    }

    fn no(bytes: &[u8], ext: &str) -> String {
        sniff(bytes, Some(ext), &all()).expect_err(ext).0
    }

    #[test]
    fn safe_files_are_typed_by_content() {
        assert_eq!(ok(&png(), "png"), "image/png");
        assert_eq!(ok(b"hello\nworld\n", "txt"), "text/plain");
        assert_eq!(ok("a,b\n1,\u{e9}\n".as_bytes(), "csv"), "text/csv");
        assert_eq!(
            ok(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n", "pdf"),
            "application/pdf"
        );
        assert_eq!(
            ok(&docx(&[("word/media/image1.png", &png())]), "docx"),
            DOCX
        );
        assert_eq!(
            ok(
                &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 0xFF, 0xD9],
                "jpg"
            ),
            "image/jpeg"
        );
    }

    #[test]
    fn hostile_files_are_refused_with_a_reason() {
        let elf = b"\x7FELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
        assert!(no(&elf, "pdf").contains("ELF"));
        assert!(no(b"MZ\x90\0\x03\0\0\0", "png").contains("PE"));
        assert!(no(b"#!/bin/sh\nrm -rf /\n", "txt").contains("script"));
        assert!(no(b"<!DOCTYPE html><html><script>alert(1)</script>", "txt").contains("markup"));
        assert!(no(
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
            "svg"
        )
        .contains("markup"));
        let mut polyglot = png();
        polyglot.extend_from_slice(&zip_of(&[("a.txt", b"x")]));
        assert!(
            no(&polyglot, "png").contains("zip"),
            "{}",
            no(&polyglot, "png")
        );
        let mut trailing = png();
        trailing.extend_from_slice(b"junk after the end");
        assert!(no(&trailing, "png").contains("after its end"));
        let exe_in_docx = docx(&[("word/media/setup.exe", b"MZ\x90\0")]);
        assert!(no(&exe_in_docx, "docx").contains("setup.exe"));
        let disguised = docx(&[("word/media/image1.png", b"MZ\x90\0\x03\0")]);
        assert!(no(&disguised, "docx").contains("PE"));
        let macros = docx(&[("word/vbaProject.bin", b"\xD0\xCF\x11\xE0")]);
        assert!(no(&macros, "docx").contains("macros"));
        assert!(no(&zip_of(&[("a.txt", b"x")]), "zip").contains("not part of an office document"));
        assert!(no(
            b"%PDF-1.4\n<< /S /JavaScript /JS (app.alert(1)) >>\n%%EOF",
            "pdf"
        )
        .contains("JavaScript"));
        assert!(no(b"%PDF-1.4\n%%EOF\n<html><script>x</script></html>", "pdf").contains("markup"));
        assert!(no(b"a\0b", "txt").contains("NUL"));
        assert!(no(b"\xff\xfe\xfd", "txt").contains("UTF-8"));
        assert!(no(b"", "txt").contains("empty"));
    }

    #[test]
    fn the_extension_must_agree_and_the_allow_list_narrows() {
        assert!(no(&png(), "pdf").contains("ends in .pdf"));
        assert!(no(b"plain", "png").contains("text/plain"));
        assert!(sniff(&png(), None, &all())
            .unwrap_err()
            .0
            .contains("no extension"));
        let only_pdf = vec!["application/pdf".to_owned()];
        assert!(sniff(&png(), Some("png"), &only_pdf)
            .unwrap_err()
            .0
            .contains("not accepted"));
        assert!(describe(&only_pdf).contains("application/pdf (.pdf)"));
        assert!(is_safe_type("text/csv") && !is_safe_type("text/html"));
    }
}
