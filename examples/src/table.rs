//! A plain-text table: columns padded to their widest cell, numbers right-aligned.

/// Rows of cells under a header line.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are blank, extra ones are kept).
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// The rendered table, one line per row, each line ending in `\n`.
    pub fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for line in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in line.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let mut push = |line: &[String]| {
            let mut text = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = line.get(i).map_or("", String::as_str);
                let pad = width - cell.chars().count();
                if i > 0 {
                    text.push_str("  ");
                }
                if i > 0 && looks_numeric(cell) {
                    text.extend(std::iter::repeat_n(' ', pad));
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        push(&self.header);
        push(
            &widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<String>>(),
        );
        for row in &self.rows {
            push(row);
        }
        out
    }
}

/// A number, optionally followed by one unit word (`12`, `20.5 µs`, `14.8 ms`).
fn looks_numeric(cell: &str) -> bool {
    let mut words = cell.split_whitespace();
    let number = words.next().is_some_and(|w| w.parse::<f64>().is_ok());
    number
        && words
            .next()
            .is_none_or(|unit| !unit.starts_with(|c: char| c.is_ascii_digit()))
        && words.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_and_numbers_right_aligned() {
        let mut t = Table::new(["name", "value"]);
        t.row(["noop", "12"]);
        t.row(["fs_read", "1234"]);
        t.row(["p99", "14.8 ms"]);
        t.row(["text", "1,000 things"]);
        assert_eq!(
            t.render(),
            "name     value\n-------  ------------\nnoop               12\nfs_read          1234\np99           14.8 ms\ntext     1,000 things\n"
        );
    }

    #[test]
    fn ragged_rows_render() {
        let mut t = Table::new(["a"]);
        t.row(["x", "y"]);
        assert_eq!(t.render(), "a\n-  -\nx  y\n");
    }
}
