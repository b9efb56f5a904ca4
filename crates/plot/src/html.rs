//! One self-contained HTML page from a Markdown report: every figure inlined as SVG, the style
//! in the page, no scripts and nothing fetched, so the file can be mailed, archived or opened
//! from a cluster's scratch folder and looks the same.
//!
//! The Markdown is the report's own text (`report.md` of `cargo xtask compare`, the run summary
//! of `genopred cv`), so the page and the Markdown never disagree. An image `![alt](name.png)`
//! becomes the SVG that `svg_for("name.png")` returns, captioned with its alt text; an image it
//! has no SVG for becomes a line saying so, never a reference to another file. Links stay links
//! (to the per-cell folders, say): following one is the reader's choice, not a fetch.

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};

/// The page's style: readable on a laptop screen, wide tables scroll instead of squeezing.
const STYLE: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif; color: #1b1b1b;
  margin: 0; background: #fafafa; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 1.5rem 2rem 3rem; background: #fff; }
h1 { font-size: 1.7rem; margin-top: 0.5rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; display: block; overflow-x: auto;
  max-width: 100%; }
th, td { border: 1px solid #d4d4d4; padding: 0.25rem 0.55rem; text-align: left; vertical-align: top; }
th { background: #f0f3f6; }
tr:nth-child(even) td { background: #fafbfc; }
code { font-size: 0.88em; background: #f3f3f3; padding: 0 0.2em; border-radius: 3px; }
.figure { display: block; margin: 1.2rem 0; }
.figure svg { display: block; max-width: 100%; height: auto; }
.caption { display: block; color: #555; font-size: 0.85rem; margin-top: 0.3rem; }
.missing { color: #a33; }
details { margin: 0.8rem 0; }
";

/// Renders `markdown` as a complete HTML page titled `title`, each image replaced by the SVG
/// text `svg_for` returns for its address (see the module's documentation).
pub fn page(title: &str, markdown: &str, svg_for: impl Fn(&str) -> Option<String>) -> String {
    let parser = Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH);
    let mut events: Vec<Event<'_>> = Vec::new();
    // The image being read: its address and the alt text gathered so far.
    let mut image: Option<(CowStr<'_>, String)> = None;
    for event in parser {
        match (&mut image, event) {
            (None, Event::Start(Tag::Image { dest_url, .. })) => image = Some((dest_url, String::new())),
            (Some((_, alt)), Event::Text(t) | Event::Code(t) | Event::InlineHtml(t)) => alt.push_str(&t),
            (Some(_), Event::End(TagEnd::Image)) => {
                let (dest, alt) = image.take().expect("inside an image");
                events.push(Event::InlineHtml(figure(&dest, &alt, svg_for(&dest)).into()));
            }
            (Some(_), _) => {}
            (None, event) => events.push(event),
        }
    }
    let mut body = String::new();
    pulldown_cmark::html::push_html(&mut body, events.into_iter());
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        escape(title)
    )
}

/// An image as inline SVG with its caption (spans styled as blocks: the image sits inside a
/// Markdown paragraph, where only phrasing content is valid HTML).
fn figure(dest: &str, alt: &str, svg: Option<String>) -> String {
    match svg {
        Some(svg) => format!(
            "<span class=\"figure\" role=\"figure\" aria-label=\"{alt}\">{}<span class=\"caption\">{alt}</span></span>",
            strip_prolog(&svg),
            alt = escape(alt)
        ),
        None => format!("<span class=\"missing\">[figure not available: {} ({})]</span>", escape(alt), escape(dest)),
    }
}

/// The `<svg>` element of an SVG document, without an XML declaration or doctype before it.
fn strip_prolog(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |at| &svg[at..]).trim_end()
}

/// `text` with HTML's special characters escaped (for text and attribute values).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVG: &str = "<?xml version=\"1.0\"?>\n<svg width=\"10\" height=\"10\" viewBox=\"0 0 10 10\" \
                       xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"10\" height=\"10\"/></svg>\n";

    #[test]
    fn tables_links_and_figures_inline() {
        let md = "# Report <1>\n\nSome **bold** text & more.\n\n| model | r |\n|---|---|\n| gblup | 0.5 |\n\n\
                  ![Accuracy per fold](acc.png)\n\n![Lost figure](gone.png)\n\n[cells/a](cells/a/)\n\n\
                  <details><summary>More</summary>\n\nhidden\n\n</details>\n";
        let html = page("A & B", md, |dest| (dest == "acc.png").then(|| SVG.to_string()));
        assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
        assert!(html.contains("<title>A &amp; B</title>"));
        assert!(html.contains("<h1>Report &lt;1&gt;</h1>"), "{html}");
        assert!(html.contains("<table>") && html.contains("<td>gblup</td>") && html.contains("<th>model</th>"));
        // The figure is the SVG itself, captioned, with no XML declaration inside the page.
        assert!(
            html.contains("<span class=\"figure\" role=\"figure\" aria-label=\"Accuracy per fold\"><svg width=\"10\"")
        );
        assert!(html.contains("<span class=\"caption\">Accuracy per fold</span>"));
        assert!(!html.contains("<?xml"));
        // A figure without an SVG says so; no page refers to another file for what it shows.
        assert!(html.contains("[figure not available: Lost figure (gone.png)]"));
        assert!(
            !html.contains("<img") && !html.contains(" src=") && !html.contains("<link") && !html.contains("<script")
        );
        assert!(html.contains("<a href=\"cells/a/\">cells/a</a>"));
        assert!(html.contains("<details><summary>More</summary>"));
    }

    #[test]
    fn alt_text_with_code_and_markup_is_escaped() {
        let html = page("t", "![a `b` \"c\" <d>](x.png)\n", |_| Some(SVG.into()));
        assert!(html.contains("aria-label=\"a b &quot;c&quot; &lt;d&gt;\""), "{html}");
        assert_eq!(escape("<a href='x'>&</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;");
    }
}
