//! Orders as CSV for spreadsheets (RFC 4180), streamed page by page from the store so an
//! export of a million orders never sits in memory. It lives with the HTTP API because it
//! reads the store while the answer is being sent.

use std::io::Read;
use std::sync::Arc;

use crate::store::{OrderQuery, ReadStore, StoredOrder};
use crate::work::orders::price::minor_exponent;

pub const HEADER: &str = "id,created_at,order_number,product,amount,currency,amount_cents,email,size,site,quantity,profile,title,message_id,source_path\r\n";

const PAGE: u32 = 500;

/// One field, quoted when needed. A value a spreadsheet would run as a formula (`=`, `+`,
/// `-`, `@`) gets a leading `'` so an order body cannot inject one.
pub fn field(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let needs_quotes = formula || value.contains([',', '"', '\n', '\r']);
    if needs_quotes {
        out.push('"');
        if formula {
            out.push('\'');
        }
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// `12499` cents in USD → `124.99`; JPY (no minor unit) → `12000`.
pub fn decimal_amount(amount_minor: i64, currency: Option<&str>) -> String {
    let exp = currency.map(minor_exponent).unwrap_or(2);
    if exp == 0 {
        return amount_minor.to_string();
    }
    let scale = 10i64.pow(exp);
    let sign = if amount_minor < 0 { "-" } else { "" };
    let abs = amount_minor.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        abs / scale as u64,
        abs % scale as u64,
        width = exp as usize
    )
}

pub fn row(out: &mut String, o: &StoredOrder) {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let cells = [
        o.id.to_string(),
        o.created_at.clone(),
        o.order.order_number.clone(),
        opt(&o.order.product),
        o.order
            .amount_cents
            .map(|a| decimal_amount(a, o.order.currency.as_deref()))
            .unwrap_or_default(),
        opt(&o.order.currency),
        o.order
            .amount_cents
            .map(|a| a.to_string())
            .unwrap_or_default(),
        opt(&o.order.email),
        opt(&o.order.size),
        opt(&o.order.site),
        o.order.quantity.to_string(),
        opt(&o.order.profile),
        opt(&o.order.title),
        o.message_id.to_string(),
        o.source_path.clone(),
    ];
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, cell);
    }
    out.push_str("\r\n");
}

/// A `Read` that yields the header, then every matching order newest first.
pub struct CsvExport {
    reader: Arc<dyn ReadStore>,
    q: Option<String>,
    /// `?source=`: one source's orders only.
    source: Option<String>,
    before_id: Option<i64>,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl CsvExport {
    pub fn new(reader: Arc<dyn ReadStore>, q: Option<String>, source: Option<String>) -> CsvExport {
        CsvExport {
            reader,
            q,
            source,
            before_id: None,
            buf: HEADER.as_bytes().to_vec(),
            pos: 0,
            done: false,
        }
    }

    fn refill(&mut self) -> std::io::Result<()> {
        let page = self
            .reader
            .orders(&OrderQuery {
                limit: PAGE,
                before_id: self.before_id,
                q: self.q.clone(),
                source: self.source.clone(),
            })
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.done = page.len() < PAGE as usize;
        self.before_id = page.last().map(|o| o.id);
        let mut text = String::with_capacity(page.len() * 160);
        for o in &page {
            row(&mut text, o);
        }
        self.buf = text.into_bytes();
        self.pos = 0;
        Ok(())
    }
}

impl Read for CsvExport {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos >= self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.refill()?;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        let cases = [
            ("plain", "plain"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\""),
            ("-5", "\"'-5\""),
        ];
        for (input, want) in cases {
            let mut out = String::new();
            field(&mut out, input);
            assert_eq!(out, want, "{input}");
        }
    }

    #[test]
    fn amounts_use_the_currency_minor_unit() {
        assert_eq!(decimal_amount(1_249_900, Some("USD")), "12499.00");
        assert_eq!(decimal_amount(9999, Some("EUR")), "99.99");
        assert_eq!(decimal_amount(5, Some("USD")), "0.05");
        assert_eq!(decimal_amount(12_000, Some("JPY")), "12000");
        assert_eq!(decimal_amount(-150, None), "-1.50");
    }
}
