//! Text shaping shared by the progress view and `pe show`: one line, bounded length.

/// `text` on one line (runs of whitespace, newlines included, become one space), at most
/// `max` characters, ending with `…` when cut.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0;
    for word in text.split_whitespace() {
        if count > 0 {
            out.push(' ');
            count += 1;
        }
        for c in word.chars() {
            if count >= max {
                out.pop();
                out.push('…');
                return out;
            }
            out.push(c);
            count += 1;
        }
    }
    if count > max {
        out.pop();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_joins_whitespace_and_cuts_with_an_ellipsis() {
        assert_eq!(one_line("a\n  b\tc", 10), "a b c");
        assert_eq!(one_line("abcdef", 6), "abcdef");
        assert_eq!(one_line("abcdefg", 6), "abcde…");
        assert_eq!(one_line("abc defg", 4), "abc…");
        assert_eq!(one_line("héllo wörld", 7), "héllo …");
        assert_eq!(one_line("", 5), "");
    }
}
