//! Bootargs values for the line-limit sweeps: this crate's
//! `tests/line_limits.rs` (against models of the parsers) and the root
//! `tests/vendor_twins.rs` (against the twins' real U-Boots) include it
//! with `#[path]`, so both sweep the same values.

/// `n` words of `len` bytes in all (blanks included), in two shapes:
/// even lengths, and one long word among one-letter ones.
pub fn values(n: usize, len: usize) -> Vec<String> {
    let letters = len - (n - 1);
    let word = |i: usize, l: usize| -> String {
        let mut w: String = format!("k{i}=")
            .chars()
            .chain(std::iter::repeat('v'))
            .take(l)
            .collect();
        if l < 3 {
            w = "abcdefgh"[..l].to_string();
        }
        w
    };
    let even: Vec<String> = (0..n)
        .map(|i| word(i, letters / n + usize::from(i < letters % n)))
        .collect();
    let mut skewed: Vec<String> = (0..n - 1).map(|_| "a".to_string()).collect();
    skewed.insert(n / 2, word(n, letters - (n - 1)));
    vec![even.join(" "), skewed.join(" ")]
}
