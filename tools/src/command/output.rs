//! Head+tail capture of a command's stdout/stderr within one byte budget: each stream keeps its
//! first and last bytes while it is drained, and [`split_budget`] shares the budget between the
//! two streams at the end (a quiet stream leaves its share to a noisy one).
//!
//! The budget counts bytes of the *serialized* result: what a stream costs once decoded (invalid
//! UTF-8 → U+FFFD, 3 bytes) and JSON-escaped (`\n` → 2 bytes, other controls → 6). Counting raw
//! bytes let newline- or control-heavy output (`seq`, binary data) grow past
//! `tool_max_output_bytes` and fail the whole call with `output_too_large`.

use std::collections::VecDeque;

use tokio::io::{AsyncRead, AsyncReadExt};

/// First and last bytes of one stream, each side holding up to `cap` bytes.
#[derive(Debug, Default)]
pub(crate) struct HeadTail {
    cap: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl HeadTail {
    /// A capture keeping up to `cap` bytes at each end.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            head: Vec::new(),
            tail: VecDeque::new(),
            total: 0,
        }
    }

    /// Appends a chunk.
    pub(crate) fn push(&mut self, mut chunk: &[u8]) {
        self.total += chunk.len() as u64;
        if self.head.len() < self.cap {
            let take = (self.cap - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
        }
        if chunk.len() >= self.cap {
            self.tail.clear();
            self.tail.extend(&chunk[chunk.len() - self.cap..]);
        } else {
            let overflow = (self.tail.len() + chunk.len()).saturating_sub(self.cap);
            self.tail.drain(..overflow);
            self.tail.extend(chunk);
        }
    }

    /// Bytes seen in total.
    #[cfg(test)]
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The whole stream, when nothing was dropped while draining.
    fn whole(&self) -> Option<Vec<u8>> {
        (self.total == (self.head.len() + self.tail.len()) as u64).then(|| {
            let mut all = self.head.clone();
            all.extend(self.tail.iter());
            all
        })
    }

    /// What the whole stream costs serialized, or `u64::MAX` when it was cut while draining.
    pub(crate) fn json_cost(&self) -> u64 {
        self.whole().map_or(u64::MAX, |all| {
            decode(&all).iter().map(|&(_, c)| c as u64).sum()
        })
    }

    /// Renders the stream within `share` serialized bytes: `(text, truncated, omitted_bytes)`.
    /// A truncated stream keeps about `share/2` at each end around a marker line.
    pub(crate) fn render(&self, share: usize) -> (String, bool, u64) {
        if let Some(all) = self.whole() {
            let chars = decode(&all);
            if chars.iter().map(|&(_, c)| c).sum::<usize>() <= share {
                return (String::from_utf8_lossy(&all).into_owned(), false, 0);
            }
        }
        // The marker: `\n[... N bytes omitted ...]\n`, N at most 20 digits, newlines escaped.
        let share = share.saturating_sub(48);
        let head = decode(&self.head);
        let (mut text, mut used, mut head_raw) = (String::new(), 0usize, 0usize);
        for &(ch, cost, raw) in &with_raw(&head, &self.head) {
            if used + cost > share / 2 {
                break;
            }
            text.push(ch);
            used += cost;
            head_raw += raw;
        }
        let tail_bytes: Vec<u8> = self.tail.iter().copied().collect();
        let tail = with_raw(&decode(&tail_bytes), &tail_bytes);
        let (mut n, mut tail_raw) = (0usize, 0usize);
        for &(_, cost, raw) in tail.iter().rev() {
            if used + cost > share {
                break;
            }
            used += cost;
            tail_raw += raw;
            n += 1;
        }
        let omitted = self.total.saturating_sub((head_raw + tail_raw) as u64);
        text.push_str(&format!("\n[... {omitted} bytes omitted ...]\n"));
        text.extend(tail[tail.len() - n..].iter().map(|&(ch, _, _)| ch));
        (text, true, omitted)
    }
}

/// Serialized bytes of `ch` inside a JSON string (serde_json's escaping).
fn json_cost(ch: char) -> usize {
    match ch {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{08}' | '\u{0c}' => 2,
        '\0'..='\u{1f}' => 6,
        c => c.len_utf8(),
    }
}

/// `bytes` decoded like `String::from_utf8_lossy`, as `(char, serialized cost)`.
fn decode(bytes: &[u8]) -> Vec<(char, usize)> {
    let mut out = Vec::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.extend(chunk.valid().chars().map(|c| (c, json_cost(c))));
        if !chunk.invalid().is_empty() {
            out.push((char::REPLACEMENT_CHARACTER, 3));
        }
    }
    out
}

/// [`decode`]'s chars with the raw bytes each stands for (a replacement char: its invalid run).
fn with_raw(chars: &[(char, usize)], bytes: &[u8]) -> Vec<(char, usize, usize)> {
    let mut raws = Vec::with_capacity(chars.len());
    for chunk in bytes.utf8_chunks() {
        raws.extend(chunk.valid().chars().map(char::len_utf8));
        if !chunk.invalid().is_empty() {
            raws.push(chunk.invalid().len());
        }
    }
    chars
        .iter()
        .zip(raws)
        .map(|(&(ch, cost), raw)| (ch, cost, raw))
        .collect()
}

/// Shares `budget` between two streams costing `a` and `b` serialized bytes
/// ([`HeadTail::json_cost`]): a stream under half the budget keeps all of it and leaves the rest
/// to the other.
pub(crate) fn split_budget(budget: usize, a: u64, b: u64) -> (usize, usize) {
    let half = budget / 2;
    let a_len = usize::try_from(a).unwrap_or(usize::MAX);
    let b_len = usize::try_from(b).unwrap_or(usize::MAX);
    if a_len <= half {
        (a_len, budget - a_len)
    } else if b_len <= budget - half {
        (budget - b_len, b_len)
    } else {
        (half, budget - half)
    }
}

/// Drains `reader` to EOF into a capture keeping `cap` bytes at each end.
pub(crate) async fn drain<R: AsyncRead + Unpin>(mut reader: R, cap: usize) -> HeadTail {
    let mut ht = HeadTail::new(cap);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => ht.push(&buf[..n]),
        }
    }
    ht
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_under_the_share() {
        let mut ht = HeadTail::new(8);
        ht.push(b"hello");
        assert_eq!(ht.render(8), ("hello".to_owned(), false, 0));
    }

    #[test]
    fn keeps_head_and_tail_over_the_share() {
        let mut ht = HeadTail::new(4);
        for chunk in [&b"abc"[..], b"defgh", b"ijklmnop", b"qr"] {
            ht.push(chunk);
        }
        assert_eq!(ht.total(), 18);
        assert_eq!(
            ht.render(8 + 48),
            (
                "abcd\n[... 10 bytes omitted ...]\nopqr".to_owned(),
                true,
                10
            )
        );
    }

    /// Regression: newline-heavy output (`seq`) grew past the budget once JSON-escaped, and the
    /// whole call failed `output_too_large`.
    #[test]
    fn the_share_counts_serialized_bytes() {
        for data in [
            "1\n2\n3\n".repeat(20_000).into_bytes(),
            vec![1u8; 50_000],
            vec![0xffu8; 50_000],
            "é\"\\".repeat(20_000).into_bytes(),
        ] {
            let mut ht = HeadTail::new(4096);
            ht.push(&data);
            let (text, truncated, omitted) = ht.render(4096);
            assert!(truncated);
            let json = serde_json::to_string(&text).expect("serializes");
            assert!(json.len() <= 4096 + 2, "{} > 4096", json.len());
            assert!(
                json.len() > 3000,
                "most of the share is used: {}",
                json.len()
            );
            assert!(omitted > 0 && omitted < data.len() as u64);
        }
        let mut small = HeadTail::new(4096);
        small.push(b"a\nb\n");
        assert_eq!(small.json_cost(), 6);
        assert_eq!(small.render(6), ("a\nb\n".to_owned(), false, 0));
    }

    #[test]
    fn quiet_stream_leaves_budget_to_noisy_one() {
        assert_eq!(split_budget(100, 10, 1000), (10, 90));
        assert_eq!(split_budget(100, 1000, 10), (90, 10));
        assert_eq!(split_budget(100, 1000, 1000), (50, 50));
    }
}
