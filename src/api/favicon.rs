//! `GET /favicon.ico`: the icon the pages carry inline, for the browsers, bookmarks and
//! link previews that ask for `/favicon.ico` whatever the page says. Served as SVG (browsers
//! go by the `Content-Type`, not the name) and open to everyone, like any site's icon.

use super::call::Call;
use super::response::Reply;
use super::state::AppState;

/// The icon; `dashboard.html` and `docs.html` carry the same SVG as a `data:` URL (a test
/// below keeps them equal).
pub const SVG: &str = include_str!("favicon.svg");

pub fn icon(_state: &AppState, _call: &mut Call) -> Reply {
    Reply::text(200, "image/svg+xml", SVG).with_header("Cache-Control", "max-age=86400")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::text::percent_decode;

    #[test]
    fn the_pages_carry_the_same_icon() {
        for (page, html) in [
            ("dashboard.html", include_str!("dashboard.html")),
            ("docs.html", include_str!("docs.html")),
        ] {
            let start = html.find("data:image/svg+xml,").expect(page) + "data:image/svg+xml,".len();
            let end = start + html[start..].find('"').expect(page);
            assert_eq!(percent_decode(&html[start..end]), SVG, "{page}");
        }
    }
}
