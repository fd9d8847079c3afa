//! Label normalisation and the alias table.
//!
//! Every checkout bot spells its labels differently (`Order #`, `Order ID`,
//! `**Order:**`, `:package: Product`, `E-mail`). Rather than a growing pile of
//! string comparisons, each label is reduced to a *key* — lower-case letters
//! and digits only, with emoji and `:emoji_code:`s removed — and looked up in
//! one table mapping keys to the order field they feed. Operators extend the
//! table from config (`orders.aliases`) when a bot uses a label we have never
//! seen, without a code change.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use super::markdown;

/// An order field that labelled values can feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    OrderNumber,
    Product,
    Price,
    Email,
    Size,
    Site,
    Quantity,
    Profile,
}

impl Target {
    /// All targets, in the order used by config error messages.
    pub const ALL: [Target; 8] = [
        Target::OrderNumber,
        Target::Product,
        Target::Price,
        Target::Email,
        Target::Size,
        Target::Site,
        Target::Quantity,
        Target::Profile,
    ];

    /// The name used for this target in config (`orders.aliases.<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Target::OrderNumber => "order_number",
            Target::Product => "product",
            Target::Price => "price",
            Target::Email => "email",
            Target::Size => "size",
            Target::Site => "site",
            Target::Quantity => "quantity",
            Target::Profile => "profile",
        }
    }

    /// Parses a config name back into a target.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Index into per-target arrays.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }

    /// The built-in labels for this target, as bots write them. The first
    /// entries are the most common and are the ones quoted in error messages.
    pub fn default_aliases(self) -> &'static [&'static str] {
        match self {
            Target::OrderNumber => &[
                "Order Number",
                "Order",
                "Order #",
                "Order ID",
                "Order No",
                "Order Num",
                "Order Nr",
                "Order Ref",
                "Order Reference",
                "Order Code",
                "Order Confirmation",
                "Confirmation Number",
                "Confirmation #",
            ],
            Target::Product => &[
                "Product",
                "Item",
                "Product Name",
                "Item Name",
                "Product Title",
            ],
            Target::Price => &[
                "Price",
                "Total",
                "Amount",
                "Total Price",
                "Order Total",
                "Cost",
                "Price Paid",
            ],
            Target::Email => &[
                "Email",
                "E-mail",
                "Email Address",
                "Mail",
                "Account Email",
                "Customer Email",
            ],
            Target::Size => &["Size", "Sizes", "Shoe Size", "Variant"],
            Target::Site => &[
                "Site",
                "Store",
                "Website",
                "Shop",
                "Retailer",
                "Merchant",
                "Store Name",
            ],
            Target::Quantity => &["Quantity", "Qty", "Amount Ordered", "Units"],
            Target::Profile => &["Profile", "Profile Name", "Billing Profile", "Task Profile"],
        }
    }
}

/// Length of a Discord `:emoji_code:` starting at byte `i` of `b` (which must
/// be a `:`), or `None`. Codes are lower-case ASCII words, and the opening
/// colon must not follow a letter or digit (so `Order:abc:` is not a code).
pub(crate) fn shortcode_len(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b':') {
        return None;
    }
    if i > 0 && b[i - 1].is_ascii_alphanumeric() {
        return None;
    }
    let mut j = i + 1;
    while j < b.len()
        && (b[j].is_ascii_lowercase()
            || b[j].is_ascii_digit()
            || matches!(b[j], b'_' | b'+' | b'-'))
    {
        j += 1;
    }
    if j > i + 1 && b.get(j) == Some(&b':') {
        Some(j + 1 - i)
    } else {
        None
    }
}

/// Length of a Discord custom emoji `<:name:id>` / `<a:name:id>` starting at
/// byte `i` of `b` (which must be `<`), or `None`.
pub(crate) fn custom_emoji_len(b: &[u8], i: usize) -> Option<usize> {
    let rest = b.get(i..)?;
    let body = if rest.starts_with(b"<:") {
        2
    } else if rest.starts_with(b"<a:") {
        3
    } else {
        return None;
    };
    let close = rest.iter().take(128).position(|&c| c == b'>')?;
    if close <= body || !rest[body..close].contains(&b':') {
        return None;
    }
    Some(close + 1)
}

/// Writes the lookup key of `label` into `out` (cleared first): lower-case
/// letters and digits only, with emoji codes removed. `"**:package: Order #:**"`
/// and `"order"` share the key `order`; `"E-mail"` and `"Email"` share `email`.
pub fn key_into(label: &str, out: &mut String) {
    out.clear();
    let b = label.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii() {
            if c == b':' {
                if let Some(n) = shortcode_len(b, i) {
                    i += n;
                    continue;
                }
            } else if c == b'<' {
                if let Some(n) = custom_emoji_len(b, i) {
                    i += n;
                    continue;
                }
            } else if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase() as char);
            }
            i += 1;
        } else {
            // Non-ASCII: decode the char at this (boundary) position.
            let ch = match label[i..].chars().next() {
                Some(ch) => ch,
                None => break,
            };
            if ch.is_alphanumeric() {
                out.extend(ch.to_lowercase());
            }
            i += ch.len_utf8();
        }
    }
}

/// The label as written, for the order's `fields` map: markdown, emoji codes,
/// leading/trailing emoji and the trailing `:` removed, inner text untouched
/// (`"**:package: Order #:**"` -> `"Order #"`).
pub fn clean_label(raw: &str) -> Cow<'_, str> {
    let md = markdown::clean(raw);
    let s: &str = &md;
    let b = s.as_bytes();
    // Cut leading emoji codes / custom emoji / symbols.
    let mut start = 0;
    loop {
        let rest = &s[start..];
        let trimmed = rest.trim_start();
        start += rest.len() - trimmed.len();
        if start >= b.len() {
            break;
        }
        if let Some(n) = shortcode_len(b, start).or_else(|| custom_emoji_len(b, start)) {
            start += n;
            continue;
        }
        match s[start..].chars().next() {
            Some(ch) if is_decoration(ch) => start += ch.len_utf8(),
            _ => break,
        }
    }
    // Cut trailing `:`, emoji codes and symbols.
    let mut end = b.len();
    loop {
        let cur = s[start..end].trim_end();
        end = start + cur.len();
        if end <= start {
            break;
        }
        if let Some(head) = cur.strip_suffix(':') {
            // A trailing emoji code `... :tada:`? Find its opening colon.
            if let Some(open) = head.rfind(':') {
                if shortcode_len(b, start + open) == Some(cur.len() - open) {
                    end = start + open;
                    continue;
                }
            }
            end -= 1;
            continue;
        }
        match cur.chars().next_back() {
            Some(ch) if is_decoration(ch) => end -= ch.len_utf8(),
            _ => break,
        }
    }
    if start >= end {
        return Cow::Borrowed("");
    }
    if start == 0 && end == s.len() {
        return md;
    }
    match md {
        Cow::Borrowed(bs) => Cow::Borrowed(&bs[start..end]),
        Cow::Owned(os) => Cow::Owned(os[start..end].to_owned()),
    }
}

/// Emoji, pictographs, variation selectors, joiners and similar symbols that
/// decorate labels but are not part of them. ASCII punctuation is *not*
/// decoration (`Order #` keeps its `#`).
fn is_decoration(ch: char) -> bool {
    !ch.is_ascii() && !ch.is_alphanumeric()
}

/// Maps label keys to targets. Built once per parser.
#[derive(Debug, Clone)]
pub struct AliasTable {
    map: HashMap<String, Target>,
    /// Labels quoted when no order number is found (built-ins first).
    order_labels: Vec<String>,
}

impl AliasTable {
    /// The built-in aliases extended (and, on conflict, overridden) by
    /// `extra`, keyed by target name.
    pub fn new(extra: &BTreeMap<String, Vec<String>>) -> Result<AliasTable, String> {
        let AliasTable {
            mut map,
            mut order_labels,
        } = AliasTable::default();
        let mut key = String::new();
        for (name, aliases) in extra {
            let t = Target::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
                format!(
                    "orders.aliases: unknown field {name:?}; known: {}",
                    known.join(", ")
                )
            })?;
            for a in aliases {
                key_into(a, &mut key);
                if key.is_empty() {
                    return Err(format!(
                        "orders.aliases.{name}: alias {a:?} has no letters or digits"
                    ));
                }
                map.insert(key.clone(), t);
                if t == Target::OrderNumber {
                    order_labels.push(a.clone());
                }
            }
        }
        Ok(AliasTable { map, order_labels })
    }

    /// The target a label feeds, if any. `scratch` is reused between calls to
    /// avoid an allocation per label.
    #[inline]
    pub fn lookup(&self, label: &str, scratch: &mut String) -> Option<Target> {
        key_into(label, scratch);
        if scratch.is_empty() {
            return None;
        }
        self.map.get(scratch.as_str()).copied()
    }

    /// Every label (built-in, then configured) that feeds the order number.
    pub fn order_labels(&self) -> &[String] {
        &self.order_labels
    }
}

impl Default for AliasTable {
    fn default() -> Self {
        let mut map = HashMap::new();
        let mut key = String::new();
        for t in Target::ALL {
            for a in t.default_aliases() {
                key_into(a, &mut key);
                map.insert(key.clone(), t);
            }
        }
        let order_labels = Target::OrderNumber
            .default_aliases()
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        AliasTable { map, order_labels }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        let mut k = String::new();
        key_into(s, &mut k);
        k
    }

    #[test]
    fn keys_ignore_case_markdown_punctuation_emoji() {
        assert_eq!(key("Order Number"), "ordernumber");
        assert_eq!(key("**ORDER NUMBER:**"), "ordernumber");
        assert_eq!(key("Order #"), "order");
        assert_eq!(key("E-mail"), "email");
        assert_eq!(key(":package: Product"), "product");
        assert_eq!(key("📦 Product"), "product");
        assert_eq!(key("<:shopify:1234567890> Site"), "site");
        assert_eq!(key("<a:spin:42>Qty."), "qty");
        assert_eq!(key("Größe"), "größe");
        assert_eq!(key(":tada:"), "");
    }

    #[test]
    fn clean_label_keeps_text_as_written() {
        assert_eq!(clean_label("**Order #:**"), "Order #");
        assert_eq!(clean_label(":package: Product"), "Product");
        assert_eq!(clean_label("📦 Product 📦"), "Product");
        assert_eq!(
            clean_label("Successful Checkout :tada:"),
            "Successful Checkout"
        );
        assert_eq!(clean_label("<:shopify:1234> Site:"), "Site");
        assert_eq!(clean_label("__Size__"), "Size");
        assert_eq!(clean_label("🎉"), "");
        assert_eq!(clean_label(":"), "");
        assert_eq!(clean_label(""), "");
    }

    #[test]
    fn defaults_resolve() {
        let t = AliasTable::default();
        let mut s = String::new();
        assert_eq!(t.lookup("Order ID", &mut s), Some(Target::OrderNumber));
        assert_eq!(t.lookup("order id", &mut s), Some(Target::OrderNumber));
        assert_eq!(t.lookup("Qty", &mut s), Some(Target::Quantity));
        assert_eq!(t.lookup("Website", &mut s), Some(Target::Site));
        assert_eq!(t.lookup("Colour", &mut s), None);
        assert_eq!(t.lookup("#", &mut s), None);
    }

    #[test]
    fn extra_aliases_extend_and_validate() {
        let mut extra = BTreeMap::new();
        extra.insert("order_number".to_owned(), vec!["Bestellnummer".to_owned()]);
        let t = AliasTable::new(&extra).expect("valid");
        let mut s = String::new();
        assert_eq!(t.lookup("Bestellnummer", &mut s), Some(Target::OrderNumber));
        assert!(t.order_labels().iter().any(|l| l == "Bestellnummer"));

        let mut bad = BTreeMap::new();
        bad.insert("colour".to_owned(), vec!["Farbe".to_owned()]);
        let err = AliasTable::new(&bad).expect_err("unknown field");
        assert_eq!(
            err,
            "orders.aliases: unknown field \"colour\"; known: order_number, product, price, email, size, site, quantity, profile"
        );

        let mut empty = BTreeMap::new();
        empty.insert("size".to_owned(), vec!["!!".to_owned()]);
        assert!(AliasTable::new(&empty).is_err());
    }

    #[test]
    fn default_matches_new_with_no_extras() {
        let a = AliasTable::default();
        let b = AliasTable::new(&BTreeMap::new()).expect("valid");
        assert_eq!(a.map, b.map);
        assert_eq!(a.order_labels, b.order_labels);
    }

    #[test]
    fn emoji_helpers_never_panic_on_truncation() {
        for s in [
            ":", ":a", "<:", "<a:", "<:x", "<:x:1", "é:", ":é:", "<é:x:1>",
        ] {
            let _ = key(s);
            let _ = clean_label(s);
        }
    }
}
