//! Plain-text tables for the human-readable output of `keyring list`, `operator raft
//! list-peers` and `bench`: left-aligned columns separated by two spaces.

use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

/// A table under construction.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; cells beyond the header's width are kept and widen the table.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, each ending in a newline.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                match widths.get_mut(i) {
                    Some(w) => *w = (*w).max(cell.len()),
                    None => widths.push(cell.len()),
                }
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&self.header).chain(&self.rows) {
            let cells: Vec<String> = line
                .iter()
                .enumerate()
                .map(|(i, cell)| format!("{cell:<width$}", width = widths[i]))
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
        }
        out
    }
}

/// Unix milliseconds as an RFC 3339 UTC time to the second; `-` for zero (unset).
pub fn unix_ms(ms: u64) -> String {
    if ms == 0 {
        return "-".to_owned();
    }
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let mut table = Table::new(&["ID", "STATE"]);
        table.row(vec!["k-1".into(), "active".into()]);
        table.row(vec!["key-22".into(), "inactive".into()]);
        assert_eq!(
            table.render(),
            "ID      STATE\nk-1     active\nkey-22  inactive\n",
            "columns padded to the widest cell, two spaces apart"
        );
    }

    #[test]
    fn times_are_rfc3339_and_zero_is_a_dash() {
        assert_eq!(unix_ms(0), "-", "unset times show as a dash");
        assert_eq!(
            unix_ms(1_700_000_000_000),
            "2023-11-14T22:13:20Z",
            "UTC to the second"
        );
    }
}
