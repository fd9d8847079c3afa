//! Per-source figures: the durable per-source totals (`source_counters`, a few rows read per
//! request, never a scan of the messages) for every configured source, zeros included, and
//! for sources no longer configured that still have totals.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::store::SourceCounters;

/// `stored` (from the store) completed with zeros for each configured name.
pub fn per_source(
    configured: &[&str],
    stored: Vec<(String, SourceCounters)>,
) -> BTreeMap<String, SourceCounters> {
    let mut map: BTreeMap<String, SourceCounters> = stored.into_iter().collect();
    for name in configured {
        map.entry((*name).to_string()).or_default();
    }
    map
}

/// A figure's name, its help text, and how to read it.
type Figure = (&'static str, &'static str, fn(&SourceCounters) -> u64);

/// The Prometheus families, one per figure, labelled `source`.
pub fn render_metrics(out: &mut String, sources: &BTreeMap<String, SourceCounters>) {
    let figures: [Figure; 5] = [
        ("received", "Webhooks stored, per source; durable.", |c| {
            c.received
        }),
        (
            "processed",
            "Messages processed successfully, per source; durable.",
            |c| c.processed,
        ),
        (
            "failed",
            "Failed attempts (retried or dead), per source; durable.",
            |c| c.failed,
        ),
        (
            "dead",
            "Messages that went to dead letters, per source; durable.",
            |c| c.dead,
        ),
        (
            "rejected",
            "Webhooks refused by the source's token or signature check (nothing stored); durable.",
            |c| c.rejected,
        ),
    ];
    for (figure, help, value) in figures {
        let name = format!("hookvault_source_{figure}_total");
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        for (source, counters) in sources {
            // Source names are [a-z0-9_-]: nothing to escape in the label value.
            let _ = writeln!(out, "{name}{{source=\"{source}\"}} {}", value(counters));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_sources_show_with_zeros_and_old_ones_stay() {
        let stored = vec![(
            "gone".to_string(),
            SourceCounters {
                received: 3,
                ..Default::default()
            },
        )];
        let map = per_source(&["orders"], stored);
        assert_eq!(map.len(), 2);
        assert_eq!(map["gone"].received, 3);
        assert_eq!(map["orders"], SourceCounters::default());
        let mut text = String::new();
        render_metrics(&mut text, &map);
        assert!(text.contains("hookvault_source_received_total{source=\"gone\"} 3\n"));
        assert!(text.contains("# TYPE hookvault_source_rejected_total counter\n"));
    }
}
