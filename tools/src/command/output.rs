//! Head+tail capture of a command's stdout/stderr within one byte budget: each stream keeps its
//! first and last bytes while it is drained, and [`split_budget`] shares the budget between the
//! two streams at the end (a quiet stream leaves its share to a noisy one).

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
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Renders the stream within `share` bytes: `(text, truncated, omitted_bytes)`. A truncated
    /// stream keeps its first `share/2` and last `share - share/2` bytes around a marker line.
    pub(crate) fn render(&self, share: usize) -> (String, bool, u64) {
        if self.total <= share as u64 {
            let mut all = self.head.clone();
            all.extend(self.tail.iter());
            return (String::from_utf8_lossy(&all).into_owned(), false, 0);
        }
        let head_n = (share / 2).min(self.head.len());
        let tail_n = (share - head_n).min(self.tail.len());
        let omitted = self.total - (head_n + tail_n) as u64;
        let tail: Vec<u8> = self
            .tail
            .iter()
            .skip(self.tail.len() - tail_n)
            .copied()
            .collect();
        let text = format!(
            "{}\n[... {omitted} bytes omitted ...]\n{}",
            String::from_utf8_lossy(&self.head[..head_n]),
            String::from_utf8_lossy(&tail)
        );
        (text, true, omitted)
    }
}

/// Shares `budget` between two streams of `a` and `b` bytes: a stream under half the budget
/// keeps all of it and leaves the rest to the other.
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
            ht.render(8),
            (
                "abcd\n[... 10 bytes omitted ...]\nopqr".to_owned(),
                true,
                10
            )
        );
    }

    #[test]
    fn quiet_stream_leaves_budget_to_noisy_one() {
        assert_eq!(split_budget(100, 10, 1000), (10, 90));
        assert_eq!(split_budget(100, 1000, 10), (90, 10));
        assert_eq!(split_budget(100, 1000, 1000), (50, 50));
    }
}
