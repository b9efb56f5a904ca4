//! `cargo xtask render-report PAGE.html ... [--out DIR]`: opens each report page in headless
//! Chromium as a reader would and checks what it shows.
//!
//! For each page: Chromium's DOM after loading (`--dump-dom`) must hold the page's title, at
//! least one table and one figure (an inline `<svg>`), and no figure marked as missing;
//! Chromium must exit cleanly without logging a failed load or a console error (every network
//! name resolves nowhere, so a page that tried to fetch anything fails here); and the
//! screenshot (`--screenshot`, a laptop-sized window) must not be blank and must show a
//! figure's colours. Screenshots are kept in `--out` (default `target/render`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

/// Chromium's window: a laptop's width, tall enough for the tables and the first figures.
const WINDOW: (u32, u32) = (1280, 2400);

/// Options every Chromium run gets: headless as root in a sandbox-less container, and nothing
/// that reaches for the network by itself (updates, sync, first-run pages).
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
    // Any host name fails to resolve: a page that fetches something shows it in the log.
    "--host-resolver-rules=MAP * ~NOTFOUND",
];

/// Runs the command.
pub fn run(args: &[String]) -> Result<()> {
    let mut pages = Vec::new();
    let mut out = PathBuf::from("target/render");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--out" => out = it.next().context("--out needs a folder")?.into(),
            _ => pages.push(PathBuf::from(a)),
        }
    }
    ensure!(!pages.is_empty(), "usage: cargo xtask render-report PAGE.html ... [--out DIR]");
    let chromium = find_chromium()?;
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    for (i, page) in pages.iter().enumerate() {
        let png = out.join(format!("page-{}.png", i + 1));
        check_page(&chromium, page, &png).with_context(|| format!("{} in Chromium", page.display()))?;
        println!("{}: rendered and checked; screenshot {}", page.display(), png.display());
    }
    Ok(())
}

fn find_chromium() -> Result<PathBuf> {
    let names = ["chromium", "chromium-browser", "google-chrome"];
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in names {
            let p = dir.join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    bail!("no Chromium on PATH (looked for {}): on Debian, apt-get install chromium", names.join(", "))
}

fn check_page(chromium: &Path, page: &Path, png: &Path) -> Result<()> {
    let page = page.canonicalize().with_context(|| format!("{}: no such page", page.display()))?;
    let html = std::fs::read_to_string(&page)?;
    let title = between(&html, "<title>", "</title>").context("the page has no <title>")?.to_string();
    check_self_contained(&html)?;
    let url = format!("file://{}", page.display());
    let profile = tempfile::tempdir()?;
    let chrome = |extra: &[String]| -> Result<(String, String)> {
        let output = Command::new(chromium)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .with_context(|| format!("starting {}", chromium.display()))?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        ensure!(output.status.success(), "Chromium exited with {}:\n{stderr}", output.status);
        Ok((String::from_utf8_lossy(&output.stdout).into_owned(), stderr))
    };
    let (dom, log) = chrome(&["--dump-dom".into()])?;
    check_dom(&dom, &title)?;
    check_log(&log)?;
    let window = format!("--window-size={},{}", WINDOW.0, WINDOW.1);
    let (_, log) = chrome(&[window, format!("--screenshot={}", png.display())])?;
    check_log(&log)?;
    let bytes = std::fs::read(png).with_context(|| format!("Chromium wrote no screenshot {}", png.display()))?;
    check_screenshot(&bytes)
}

fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

/// The page's own text refers to nothing it would load: no `src`, stylesheet link, CSS
/// `url(...)` or import (Chromium does not log a failed image load, so this is read from the
/// file). Links (`href` of `<a>`) are the reader's to follow and are allowed.
fn check_self_contained(html: &str) -> Result<()> {
    let lower = html.to_ascii_lowercase();
    let found: Vec<&str> = [" src=", "<link", "url(", "@import", "<iframe", "<object", "<embed"]
        .into_iter()
        .filter(|p| lower.contains(p))
        .collect();
    ensure!(found.is_empty(), "the page loads other files ({}), so it is not self-contained", found.join(", "));
    Ok(())
}

/// What the loaded page must show.
fn check_dom(dom: &str, title: &str) -> Result<()> {
    ensure!(dom.contains(&format!("<title>{title}</title>")), "the loaded page lost its title \"{title}\"");
    ensure!(dom.contains("<table"), "the loaded page shows no table");
    ensure!(dom.contains("<td>"), "the loaded page's tables are empty");
    ensure!(dom.contains("<svg"), "the loaded page shows no figure");
    ensure!(!dom.contains("figure not available"), "a figure of the page is missing");
    Ok(())
}

/// Chromium's log must not show a failed load or a console error. (Its own start-up chatter
/// about D-Bus, absent in containers, is not about the page.)
fn check_log(log: &str) -> Result<()> {
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("net::ERR") || l.contains("Failed to load resource"))
        .collect();
    ensure!(bad.is_empty(), "the page logged errors while loading:\n{}", bad.join("\n"));
    Ok(())
}

/// The screenshot is a page with text and a figure, not a blank or an error page: at least
/// 1 % of its pixels are dark (text, axes), and some are figure blue (the first colour of every
/// figure's palette, Okabe–Ito blue 0, 114, 178).
fn check_screenshot(png: &[u8]) -> Result<()> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().context("the screenshot is not a PNG")?;
    let mut buf = vec![0; reader.output_buffer_size().context("the screenshot is too large to decode")?];
    let info = reader.next_frame(&mut buf).context("decoding the screenshot")?;
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => bail!("unexpected screenshot colour type {other:?}"),
    };
    ensure!(info.bit_depth == png::BitDepth::Eight, "unexpected screenshot bit depth {:?}", info.bit_depth);
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks_exact(channels).collect();
    let dark = pixels.iter().filter(|p| p[..3].iter().all(|&c| c < 100)).count();
    let blue = pixels.iter().filter(|p| p[0] < 80 && (80..150).contains(&p[1]) && (140..215).contains(&p[2])).count();
    let n = pixels.len().max(1);
    ensure!(dark * 100 >= n, "the screenshot is nearly blank ({dark} dark pixels of {n})");
    ensure!(blue >= 50, "the screenshot shows no figure ({blue} pixels in the figures' blue)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_of(width: u32, height: u32, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, width, height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().unwrap();
            let mut data = Vec::new();
            for y in 0..height {
                for x in 0..width {
                    data.extend(pixel(x, y));
                }
            }
            writer.write_image_data(&data).unwrap();
        }
        bytes
    }

    #[test]
    fn blank_and_figureless_screenshots_fail() {
        let white = png_of(100, 100, |_, _| [255, 255, 255]);
        assert!(check_screenshot(&white).unwrap_err().to_string().contains("nearly blank"));
        // Text but no figure.
        let text = png_of(100, 100, |x, _| if x % 10 == 0 { [20, 20, 20] } else { [255, 255, 255] });
        assert!(check_screenshot(&text).unwrap_err().to_string().contains("no figure"));
        let page = png_of(100, 100, |x, y| match (x % 10, y < 20) {
            (0, _) => [20, 20, 20],
            (_, true) => [0, 114, 178],
            _ => [255, 255, 255],
        });
        check_screenshot(&page).unwrap();
        assert!(check_screenshot(b"not a png").is_err());
    }

    #[test]
    fn the_dom_must_show_title_tables_and_figures() {
        let good =
            "<html><head><title>r</title></head><body><table><tr><td>1</td></tr></table><svg></svg></body></html>";
        check_dom(good, "r").unwrap();
        assert!(check_dom(good, "other").is_err());
        assert!(check_dom(&good.replace("<svg></svg>", ""), "r").unwrap_err().to_string().contains("no figure"));
        assert!(check_dom(&good.replace("<table>", "<div>"), "r").is_err());
        let missing = good.replace("<svg></svg>", "<svg></svg>[figure not available: x (x.png)]");
        assert!(check_dom(&missing, "r").is_err());
        check_log("[1:2:ERROR:dbus/bus.cc:405] Failed to connect to the bus").unwrap();
        assert!(check_log("[1:1:INFO:CONSOLE(1)] \"Uncaught ReferenceError\"").is_err());
        assert!(check_log("Failed to load resource: net::ERR_NAME_NOT_RESOLVED").is_err());
        assert_eq!(between("<title>a</title>", "<title>", "</title>"), Some("a"));
        check_self_contained(good).unwrap();
        check_self_contained("<a href=\"cells/a/\">a</a>").unwrap();
        for bad in [
            "<img src=\"http://x/y.png\">",
            "<IMG SRC='a.png'>",
            "<link rel=stylesheet href=a.css>",
            "<style>b{background:url(a.png)}</style>",
        ] {
            assert!(check_self_contained(bad).is_err(), "{bad}");
        }
    }
}
